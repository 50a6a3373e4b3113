import { Bitfield } from '../../chunks/bitfield.ts'
import { SeedPlanner, type SeedPlannerOptions } from './seed-planner.ts'

/** The planner's group for agents that name no site: today's single swarm. */
const NO_SITE = ''

/**
 * Super-seeding per edge site. Agents that name no site share one SeedPlanner, as before sites. An agent that names
 * a site is told everything the seeder holds: its site's members already split the chunks among themselves by the
 * site election (shared/swarm/sites.ts), each asking outside only for the chunks it wins, so each chunk leaves the
 * seeder once per site before any second copy into a site. A planner reserving chunks for members would contradict
 * the election (the member told of chunk i is not the one whose turn it is), and the site would wait for the
 * takeover. The planner still counts what is served and who holds what, per site, for the phase and the metrics.
 * An agent's site is what it says in its `have` request; a lie only moves which chunks it is told of (every chunk
 * it passes on is still proven by its receiver).
 */
export class SiteSeedPlanner {
  readonly chunkCount: number
  readonly #opts: SeedPlannerOptions
  readonly #have: Bitfield | undefined
  readonly #sites = new Map<string, SeedPlanner>()
  readonly #siteOf = new Map<string, string>()

  constructor(opts: SeedPlannerOptions) {
    this.chunkCount = opts.chunkCount
    this.#opts = opts
    this.#have = opts.have?.clone()
  }

  /** Chunk sends reported with onServed, over every site. */
  get served(): number {
    let n = 0
    for (const p of this.#sites.values()) n += p.served
    return n
  }

  markHave(index: number): void {
    this.#have?.set(index)
    for (const p of this.#sites.values()) p.markHave(index)
  }

  /** What to advertise to `peer` of `site` now (see SeedPlanner.advertiseFor); an agent that moves site is re-homed. */
  advertiseFor(peer: string, now: number, site?: string): Bitfield {
    const name = site ?? NO_SITE
    const before = this.#siteOf.get(peer)
    if (before !== undefined && before !== name) this.#sites.get(before)?.removePeer(peer)
    this.#siteOf.set(peer, name)
    const planner = this.#planner(name)
    const advertised = planner.advertiseFor(peer, now)
    if (name === NO_SITE) return advertised
    if (this.#have === undefined) return Bitfield.full(this.chunkCount)
    for (const i of this.#have.indexes()) advertised.set(i)
    return advertised
  }

  /** The seeder starts sending chunk `index` to `peer` (SeedPlanner.begin, in the peer's site's planner). */
  begin(peer: string, index: number, now: number): void {
    this.#planner(this.#siteOf.get(peer) ?? NO_SITE).begin(peer, index, now)
  }

  /** The send begun at `startedAt` is over (SeedPlanner.end). */
  end(peer: string, index: number, startedAt: number, bytes: number, now: number): void {
    this.#planner(this.#siteOf.get(peer) ?? NO_SITE).end(index, startedAt, bytes, now)
  }

  onServed(peer: string, index: number, now: number): void {
    this.#planner(this.#siteOf.get(peer) ?? NO_SITE).onServed(peer, index, now)
  }

  onPeerHas(peer: string, index: number): void {
    this.#planner(this.#siteOf.get(peer) ?? NO_SITE).onPeerHas(peer, index)
  }

  removePeer(peer: string): void {
    const name = this.#siteOf.get(peer)
    if (name === undefined) return
    this.#siteOf.delete(peer)
    this.#sites.get(name)?.removePeer(peer)
  }

  #planner(site: string): SeedPlanner {
    let p = this.#sites.get(site)
    if (p === undefined) {
      // Copies from spare uplink are for the flat swarm: an agent in a site is told everything already, and a site's
      // planner would count every chunk its members lack as fresh work waiting on the seeder's meter.
      const { meter, ...opts } = this.#opts
      p = new SeedPlanner({
        ...opts,
        ...(site === NO_SITE && meter !== undefined ? { meter } : {}),
        ...(this.#have === undefined ? {} : { have: this.#have }),
      })
      this.#sites.set(site, p)
    }
    return p
  }
}
