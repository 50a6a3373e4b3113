import type { PeerId } from '@libp2p/interface'
import type { Digest } from '../shared/oci/index.ts'
import type { P2PNode } from '../shared/p2p/index.ts'
import { withPeerId } from '../shared/swarm/index.ts'
import { MAX_HAVE_PEERS } from '../shared/swarm/protocol/index.ts'

/** A peer that asked about a blob this long ago is no longer offered as a hint. */
const HINT_TTL_MS = 60_000

/**
 * The seeder as tracker: every agent fetching a blob asks the seeder about it, so the seeder can
 * tell each one a few others doing the same. Agents find each other in one round trip instead of
 * waiting for DHT provider records (which only exist once a peer holds a first chunk).
 */
export class PeerHints {
  readonly #node: P2PNode
  readonly #askers = new Map<Digest, Map<string, number>>()
  readonly #addrs = new Map<string, readonly string[]>()
  readonly #now: () => number

  constructor(node: P2PNode, now: () => number = Date.now) {
    this.#node = node
    this.#now = now
  }

  note(digest: Digest, peer: PeerId): void {
    const id = peer.toString()
    let m = this.#askers.get(digest)
    if (m === undefined) {
      m = new Map()
      this.#askers.set(digest, m)
    }
    m.set(id, this.#now())
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

  /** Up to MAX_HAVE_PEERS recent askers other than `exclude`, most recent first. */
  peersFor(digest: Digest, exclude: string | undefined): readonly string[] {
    const m = this.#askers.get(digest)
    if (m === undefined) return []
    const now = this.#now()
    const out: string[] = []
    for (const [id, at] of [...m].sort((a, b) => b[1] - a[1])) {
      if (now - at > HINT_TTL_MS) {
        m.delete(id)
        continue
      }
      if (id === exclude) continue
      const a = this.#addrs.get(id)?.[0]
      if (a !== undefined) out.push(a)
      if (out.length >= MAX_HAVE_PEERS) break
    }
    return out
  }
}
