import type { Bitfield } from '../shared/chunks/index.ts'
import type { Digest } from '../shared/oci/index.ts'
import { HaveTracker } from '../shared/swarm/have-tracker.ts'
import type { ChunkClient, RequestContext } from '../shared/swarm/protocol/index.ts'
import { SiteSeedPlanner } from '../shared/swarm/scheduler/index.ts'

interface Seeding {
  readonly planner: SiteSeedPlanner
  readonly tracker: HaveTracker
  readonly stop: AbortController
  lastUsed: number
}

/** A seeding plan is dropped after this long without a request. */
const IDLE_MS = 10 * 60_000

/**
 * Super-seeding (BitTorrent's term): while some chunk of a blob has reached no agent, each agent
 * is told about a few chunks nobody else was sent, so a thin seeder sends every chunk once before
 * it sends any twice and agents trade the rest among themselves. Per edge site: an agent's site is the one its
 * `have` request names, and each chunk goes once into each site before any second copy into a site (see
 * SiteSeedPlanner). The planner (pure) decides; this class feeds it what the seeder holds, what it served, and
 * what agents report holding.
 */
export class SuperSeeder {
  readonly #client: ChunkClient
  readonly #blobs = new Map<Digest, Seeding>()
  readonly #now: () => number

  constructor(client: ChunkClient, now: () => number = Date.now) {
    this.#client = client
    this.#now = now
  }

  advertise(
    digest: Digest,
    have: Bitfield,
    ctx: RequestContext | undefined,
    geometry: { size: number; chunkSize: number },
  ) {
    if (ctx === undefined) return have
    const s = this.#seeding(digest, have, geometry)
    for (const i of have.indexes()) s.planner.markHave(i)
    const peer = ctx.peer.toString()
    s.tracker.track(peer, ctx.peer, 'peer')
    const advertised = s.planner.advertiseFor(peer, this.#now(), ctx.site)
    for (const i of advertised.indexes()) if (!have.has(i)) advertised.clear(i)
    return advertised
  }

  served(digest: Digest, peer: string, index: number): void {
    this.#blobs.get(digest)?.planner.onServed(peer, index, this.#now())
  }

  stop(): void {
    for (const s of this.#blobs.values()) s.stop.abort()
    this.#blobs.clear()
  }

  #seeding(digest: Digest, have: Bitfield, geometry: { size: number; chunkSize: number }): Seeding {
    const now = this.#now()
    for (const [d, s] of this.#blobs) {
      if (now - s.lastUsed > IDLE_MS) {
        s.stop.abort()
        this.#blobs.delete(d)
      }
    }
    let s = this.#blobs.get(digest)
    if (s === undefined || s.planner.chunkCount !== have.length) {
      s?.stop.abort()
      const stop = new AbortController()
      const planner = new SiteSeedPlanner({ chunkCount: have.length, have })
      const tracker = new HaveTracker({
        client: this.#client,
        digest,
        geometry,
        signal: stop.signal,
        onHave: (peer, _kind, bits) => {
          for (const i of bits.indexes()) planner.onPeerHas(peer, i)
        },
        onGone: (peer) => planner.removePeer(peer),
      })
      s = { planner, tracker, stop, lastUsed: now }
      this.#blobs.set(digest, s)
    }
    s.lastUsed = now
    return s
  }
}
