import { SITE_LOOKUP_MS } from './sites.ts'

/**
 * The longest a download goes without a DHT provider lookup for its blob while its lookups find nobody new (outside
 * the edge-site rule, which keeps lookups SITE_LOOKUP_MS apart). The session asks for holders every second
 * (REDISCOVER_MS), and past the lookup cache each ask was a DHT query: kad-dht asks for K = 20 providers, so in a
 * fleet of fewer nodes every query runs to its end and reaches every node, a stream and a GET_PROVIDERS answer
 * (provider records, closer peers from the peer store) each. In a 16-node thin-link rollout that was ~16 % of every
 * agent's CPU (bench/RESULTS.md), most of it answers naming holders already followed, which seeders' peer hints and
 * peers asking us bring as well. A lookup that brings a new holder, or a holder lost, brings it back to every second.
 */
export const MAX_LOOKUP_INTERVAL_MS = 4000
/** The first pause after a lookup that found nobody new; each such lookup doubles it, up to the cap. */
export const FIRST_LOOKUP_BACKOFF_MS = 2000

/**
 * When one download may look its blob's providers up in the DHT: the agent's holder source and the simulator ask
 * this, so both follow one rule. Time is whatever clock the caller keeps (ms); the pacer only compares it.
 * - in an edge site, following a seeder: SITE_LOOKUP_MS apart (the seeder's answers name the site's askers);
 * - in a site with no seeder: at every rediscovery (its members meet only through the DHT, and until they do each
 *   fetches from outside alone);
 * - in no site: at every rediscovery while lookups bring new holders, backing off 2 → 4 s while they bring none.
 */
export class LookupPacer {
  readonly #rule: 'site' | 'every' | 'backoff'
  /** No lookup starts before this time. */
  #nextAt = Number.NEGATIVE_INFINITY
  #gapMs = 0

  constructor(opts: { readonly inSite: boolean; readonly followsSeeder: boolean }) {
    this.#rule = !opts.inSite ? 'backoff' : opts.followsSeeder ? 'site' : 'every'
  }

  /** Whether a lookup starts now; if so it is counted as started (no other starts while it runs, up to the cap). */
  start(now: number): boolean {
    if (this.#rule === 'every') return true
    if (now < this.#nextAt) return false
    this.#nextAt = now + (this.#rule === 'site' ? SITE_LOOKUP_MS : MAX_LOOKUP_INTERVAL_MS)
    return true
  }

  /** A started lookup ended, having brought `fresh` holders not followed before. */
  finished(fresh: number, now: number): void {
    if (this.#rule !== 'backoff') return
    this.#gapMs = fresh > 0 ? 0 : Math.min(MAX_LOOKUP_INTERVAL_MS, Math.max(FIRST_LOOKUP_BACKOFF_MS, 2 * this.#gapMs))
    // A holder lost while the lookup ran (lost()) keeps the next one at the next rediscovery.
    if (this.#nextAt !== Number.NEGATIVE_INFINITY) this.#nextAt = now + this.#gapMs
  }

  /** A followed holder was lost: the next rediscovery looks the blob up again (the site rule keeps its spacing). */
  lost(): void {
    if (this.#rule !== 'backoff') return
    this.#gapMs = 0
    this.#nextAt = Number.NEGATIVE_INFINITY
  }
}
