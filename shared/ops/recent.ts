import type { Digest } from '../oci/index.ts'

/** How many finished pulls the status page lists. */
export const RECENT_PULLS = 20

/** One finished blob pull, as the status page shows it: digests and sizes only, never repository names. */
export interface RecentPull {
  readonly digest: Digest
  readonly size: number | undefined
  /** Where the bytes came from: the swarm (peers and seeders), the origin, or a mix after a swarm fallback. */
  readonly via: 'swarm' | 'origin' | 'swarm+origin'
  readonly ok: boolean
  readonly ms: number
  /** Epoch ms of the end. */
  readonly at: number
}

/** The last RECENT_PULLS pulls, newest first. */
export class RecentPulls {
  readonly #items: RecentPull[] = []
  readonly #max: number

  constructor(max = RECENT_PULLS) {
    this.#max = max
  }

  add(pull: RecentPull): void {
    this.#items.unshift(pull)
    if (this.#items.length > this.#max) this.#items.length = this.#max
  }

  list(): readonly RecentPull[] {
    return [...this.#items]
  }
}
