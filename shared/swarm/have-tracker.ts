import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Bitfield, type ChunkGeometry } from '../chunks/index.ts'
import type { Digest } from '../oci/index.ts'
import type { ChunkClient, PeerTarget } from './protocol/index.ts'
import type { PeerKind } from './scheduler/index.ts'
import { sameSite, SITE_OUTSIDE_HAVE_MS } from './sites.ts'

export interface HaveTrackerInit {
  readonly client: Pick<ChunkClient, 'getHave'>
  readonly digest: Digest
  readonly geometry: ChunkGeometry
  readonly signal: AbortSignal
  /**
   * `bits` is the whole bitfield the first time, then only the chunks new since the last answer. `site`: the site
   * the peer says it is in (edge sites), as its latest answer said.
   */
  readonly onHave: (peer: string, kind: PeerKind, bits: Bitfield, first: boolean, site?: string) => void
  readonly onGone: (peer: string) => void
  /** Peer hints (multiaddrs with /p2p/) that came with an answer. */
  readonly onPeers?: (addrs: readonly string[]) => void
  /** Peers (not seeders) followed at once; more are turned away until one leaves (default MAX_TRACKED_PEERS). */
  readonly maxPeers?: number
  /** This node's edge site, told to every peer asked (a seeder super-seeds per site). */
  readonly site?: string
  /** With `site`: pause between `have` asks to a peer of another site (default SITE_OUTSIDE_HAVE_MS). */
  readonly outsidePauseMs?: number
}

/**
 * Peers followed per blob. The DHT answers with every provider, so at fleet scale a node would hold a long poll
 * on thousands of peers for each blob; a few dozen holders already keep every upload slot it may use busy, and
 * the periodic rediscovery brings in new ones when some leave.
 */
export const MAX_TRACKED_PEERS = 40

/** How long a peer may hold a `have` long poll open before answering unchanged. */
export const HAVE_WAIT_MS = 5000
/** A peer that holds nothing yet is asked again after this long. */
export const EMPTY_RETRY_MS = 250
const MAX_FAILURES = 3

/**
 * Keeps the scheduler's view of every candidate's bitfield current: one long-polling `have`
 * loop per peer, so a new chunk anywhere is known within one round trip, without a push channel.
 */
export class HaveTracker {
  readonly #i: HaveTrackerInit
  /** `local`: a peer that said it is in this node's site, no longer counted against maxPeers. */
  readonly #peers = new Map<string, { kind: PeerKind; target: PeerTarget; local?: boolean }>()
  #peerCount = 0

  constructor(init: HaveTrackerInit) {
    this.#i = init
  }

  track(id: string, target: PeerTarget, kind: PeerKind): void {
    if (this.#peers.has(id) || this.#i.signal.aborted) return
    if (kind === 'peer') {
      if (this.#peerCount >= (this.#i.maxPeers ?? MAX_TRACKED_PEERS)) return
      this.#peerCount++
    }
    this.#peers.set(id, { kind, target })
    void this.#loop(id)
  }

  trackId(id: string, kind: PeerKind, peerId?: PeerId): void {
    if (this.#peers.has(id)) return
    let target: PeerId
    try {
      target = peerId ?? peerIdFromString(id)
    } catch {
      return
    }
    this.track(id, target, kind)
  }

  knows(peer: string): boolean {
    return this.#peers.has(peer)
  }

  kind(peer: string): PeerKind {
    return this.#peers.get(peer)?.kind ?? 'peer'
  }

  target(peer: string): PeerTarget {
    const p = this.#peers.get(peer)
    if (p === undefined) throw new Error(`unknown peer ${peer}`)
    return p.target
  }

  /** Peers (not seeders) followed now. */
  get peerCount(): number {
    return this.#peerCount
  }

  stop(): void {
    this.#peers.clear()
    this.#peerCount = 0
  }

  async #loop(id: string): Promise<void> {
    const { client, digest, geometry, signal } = this.#i
    const peer = this.#peers.get(id)!
    let prev: Bitfield | undefined
    let failures = 0
    while (!signal.aborted && this.#peers.get(id) === peer) {
      try {
        const res = await client.getHave(peer.target, digest, {
          ...(prev === undefined ? {} : { known: prev.count }),
          waitMs: HAVE_WAIT_MS,
          site: this.#i.site,
          signal,
        })
        failures = 0
        if (res === undefined) {
          await sleep(EMPTY_RETRY_MS, undefined, { signal }).catch(() => {})
          continue
        }
        if (res.size !== geometry.size || res.chunkSize !== geometry.chunkSize) break // cut differently: useless here
        if (res.peers !== undefined) this.#i.onPeers?.(res.peers)
        // A member of this node's site frees its place: the site's election needs every member to know the others,
        // and other sites' peers met through the DHT would otherwise fill the cap first.
        if (peer.kind === 'peer' && peer.local !== true && sameSite(this.#i.site, res.site)) {
          peer.local = true
          this.#peerCount--
        }
        if (prev === undefined) {
          this.#i.onHave(id, peer.kind, res.bitfield, true, res.site)
        } else {
          const fresh = new Bitfield(res.bitfield.length)
          for (const i of res.bitfield.indexes()) if (!prev.has(i)) fresh.set(i)
          if (fresh.count > 0) this.#i.onHave(id, peer.kind, fresh, false, res.site)
        }
        prev = res.bitfield
        // A complete holder never changes again; a long poll on it would answer at once forever.
        if (res.complete) return
        // A peer across the WAN from this node's site: its news batched, see SITE_OUTSIDE_HAVE_MS.
        if (peer.kind === 'peer' && this.#i.site !== undefined && !sameSite(this.#i.site, res.site)) {
          await sleep(this.#i.outsidePauseMs ?? SITE_OUTSIDE_HAVE_MS, undefined, { signal }).catch(() => {})
        }
      } catch {
        if (signal.aborted) return
        if (++failures >= MAX_FAILURES) break
        await sleep(EMPTY_RETRY_MS * failures, undefined, { signal }).catch(() => {})
      }
    }
    if (!signal.aborted && prev !== undefined) this.#i.onGone(id)
    this.#forget(id, peer)
  }

  #forget(id: string, peer: { kind: PeerKind; local?: boolean }): void {
    if (this.#peers.get(id) !== peer) return
    this.#peers.delete(id)
    if (peer.kind === 'peer' && peer.local !== true) this.#peerCount--
  }
}
