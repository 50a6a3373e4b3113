// The WAN budget of a node in an edge site (`--wan-upload-rate`, `--wan-download-rate`): bytes to and from peers
// of other sites count against these caps on top of the node's own (`--upload-rate`, `--download-rate`), and bytes
// from the origin against `--origin-rate` and the WAN download cap.
//
// Which side of the WAN a party is on:
// - a peer or seeder is in this node's site when it says so in its `have` messages (shared/swarm/sites.ts); one
//   that says nothing (no site, or a release that predates sites) is outside. A peer lying about its site only
//   moves its bytes from one budget to the other: it cannot make the node accept anything.
// - the origin is always outside: a node cannot tell where a registry is, and the deployment sites are made for
//   (a store or a factory behind a thin link) has its registry in the core. A site with a registry of its own
//   leaves --wan-download-rate unset, or points the agent at that registry as a mirror outside Shoal.
// - a node with no site is a site of one: every peer and the origin are outside.
import { bothBuckets, TokenBucket } from '../rate/index.ts'
import { sameSite } from './sites.ts'

export interface WanBudgetInit {
  /** This node's site (`--site`). */
  readonly site?: string | undefined
  readonly upload?: TokenBucket | undefined
  readonly wanUpload?: TokenBucket | undefined
  readonly download?: TokenBucket | undefined
  readonly wanDownload?: TokenBucket | undefined
  readonly origin?: TokenBucket | undefined
}

/** Peers remembered with their site, at most; the oldest are forgotten first (they count as outside again). */
export const MAX_KNOWN_PEER_SITES = 4096

export class WanBudget {
  readonly #i: WanBudgetInit
  readonly #outUp: TokenBucket | undefined
  readonly #outDown: TokenBucket | undefined
  readonly #origin: TokenBucket | undefined
  readonly #sites = new Map<string, string | undefined>()

  constructor(init: WanBudgetInit) {
    this.#i = init
    this.#outUp = bothBuckets(init.upload, init.wanUpload)
    this.#outDown = bothBuckets(init.download, init.wanDownload)
    this.#origin = bothBuckets(init.origin, init.wanDownload)
  }

  /** `peer` said it is in `site` (its latest `have` request or answer). */
  learn(peer: string, site: string | undefined): void {
    this.#sites.delete(peer)
    this.#sites.set(peer, site)
    if (this.#sites.size > MAX_KNOWN_PEER_SITES) this.#sites.delete(this.#sites.keys().next().value!)
  }

  /** The site `peer` said it is in; undefined when it named none or is not known. */
  siteOf(peer: string): string | undefined {
    return this.#sites.get(peer)
  }

  /** Whether `peer` is across the WAN from this node (not known to be in its site). */
  outside(peer: string): boolean {
    return !sameSite(this.#i.site, this.#sites.get(peer))
  }

  /** The limit on bytes sent to `peer`. */
  uploadTo(peer: string): TokenBucket | undefined {
    return this.outside(peer) ? this.#outUp : this.#i.upload
  }

  /** The limit on bytes received from `peer` (a seeder included). */
  downloadFrom(peer: string): TokenBucket | undefined {
    return this.outside(peer) ? this.#outDown : this.#i.download
  }

  /** The node's own upload limit, whatever the peer (the bulk path, which does not know sites). */
  get upload(): TokenBucket | undefined {
    return this.#i.upload
  }

  /** The limit on bytes from the origin. */
  fromOrigin(): TokenBucket | undefined {
    return this.#origin
  }
}

/** Rates in bytes per second, 0 = no cap: the budget of a node from its flags, each bucket made once. */
export function wanBudgetFor(rates: {
  readonly site?: string | undefined
  readonly uploadRate: number
  readonly wanUploadRate: number
  readonly downloadRate: number
  readonly wanDownloadRate: number
  readonly originRate: number
}): WanBudget {
  const bucket = (rate: number) => (rate > 0 ? new TokenBucket({ bytesPerSecond: rate }) : undefined)
  return new WanBudget({
    site: rates.site,
    upload: bucket(rates.uploadRate),
    wanUpload: bucket(rates.wanUploadRate),
    download: bucket(rates.downloadRate),
    wanDownload: bucket(rates.wanDownloadRate),
    origin: bucket(rates.originRate),
  })
}
