import type { PeerId } from '@libp2p/interface'
import { LRUCache } from 'lru-cache'
import type { Digest } from '../shared/oci/index.ts'
import type { P2PNode } from '../shared/p2p/index.ts'
import { withPeerId } from '../shared/swarm/index.ts'
import { MAX_HAVE_PEERS } from '../shared/swarm/protocol/index.ts'

/** A peer that asked about a blob this long ago is no longer offered as a hint. */
const HINT_TTL_MS = 60_000
/**
 * Every agent that asks is remembered, so the maps are bounded: blobs asked about within HINT_TTL_MS (the
 * least recently asked go first), askers kept per blob (the oldest go first: they are the least useful hint),
 * and peers whose addresses are known (least recently used first; an evicted one is looked up again).
 */
export const MAX_HINTED_BLOBS = 4096
export const MAX_ASKERS_PER_BLOB = 1024
export const MAX_HINTED_PEERS = 16_384

/**
 * The seeder as tracker: every agent fetching a blob asks the seeder about it, so the seeder can
 * tell each one a few others doing the same. Agents find each other in one round trip instead of
 * waiting for DHT provider records (which only exist once a peer holds a first chunk).
 */
export class PeerHints {
  readonly #node: P2PNode
  readonly #askers: LRUCache<Digest, Map<string, number>>
  readonly #addrs = new LRUCache<string, readonly string[]>({ max: MAX_HINTED_PEERS })
  /** The site each asker named in its latest `have` request (edge sites). */
  readonly #sites = new LRUCache<string, string>({ max: MAX_HINTED_PEERS })
  readonly #now: () => number

  constructor(node: P2PNode, now: () => number = Date.now) {
    this.#node = node
    this.#now = now
    this.#askers = new LRUCache({ max: MAX_HINTED_BLOBS, ttl: HINT_TTL_MS, ttlResolution: 0, perf: { now } })
  }

  /** Blobs with recent askers, and peers whose addresses are held (each at most its cap). */
  get size(): { readonly blobs: number; readonly peers: number; readonly askers: number } {
    let askers = 0
    for (const m of this.#askers.values()) askers = Math.max(askers, m.size)
    return { blobs: this.#askers.size, peers: this.#addrs.size, askers }
  }

  note(digest: Digest, peer: PeerId, site?: string): void {
    const id = peer.toString()
    if (site === undefined) this.#sites.delete(id)
    else this.#sites.set(id, site)
    const m = this.#askers.get(digest) ?? new Map<string, number>()
    // Re-inserted so the Map's order stays oldest ask first.
    m.delete(id)
    m.set(id, this.#now())
    if (m.size > MAX_ASKERS_PER_BLOB) m.delete(m.keys().next().value!)
    // Set again: the blob's hints live HINT_TTL_MS after its latest ask.
    this.#askers.set(digest, m)
    if (!this.#addrs.has(id)) {
      this.#addrs.set(id, [])
      void this.#node.peerStore
        .get(peer)
        .then((p) => {
          const addrs = p.addresses
            .map((a) => a.multiaddr.toString())
            .filter((a) => a.includes('/tcp/') && !a.includes('/p2p-circuit'))
            .map((a) => withPeerId(a, id))
          this.#addrs.set(id, addrs.slice(0, 2))
        })
        .catch(() => this.#addrs.delete(id))
    }
  }

  /**
   * Up to MAX_HAVE_PEERS recent askers other than `exclude`, most recent first; with `site` (the asker's edge
   * site), the askers of that site before all others, so the members of a site find each other first.
   */
  peersFor(digest: Digest, exclude: string | undefined, site?: string): readonly string[] {
    const m = this.#askers.get(digest)
    if (m === undefined) return []
    const now = this.#now()
    const recent: string[] = []
    for (const [id, at] of [...m].sort((a, b) => b[1] - a[1])) {
      if (now - at > HINT_TTL_MS) {
        m.delete(id)
        continue
      }
      if (id !== exclude) recent.push(id)
    }
    const ordered =
      site === undefined
        ? recent
        : [
            ...recent.filter((id) => this.#sites.get(id) === site),
            ...recent.filter((id) => this.#sites.get(id) !== site),
          ]
    const out: string[] = []
    for (const id of ordered) {
      const a = this.#addrs.get(id)?.[0]
      if (a !== undefined) out.push(a)
      if (out.length >= MAX_HAVE_PEERS) break
    }
    return out
  }
}
