import { DEFAULT_NODE_INFLIGHT } from './constants.ts'
import { SchedulerError } from './errors.ts'

/**
 * Chunk requests one node keeps in flight over all its downloads at once. Each request that gets an upload slot
 * holds that slot for as long as the chunk takes to reach this node, and the node's downlink is shared by all the
 * chunks coming in: a node with a dozen transfers under way gets each at a twelfth of its downlink, while the
 * senders' slots it holds run at that twelfth and other nodes, turned away `busy`, idle. Each download's own cap
 * (the scheduler's inflightCap) does not see the others, so a node pulling four layers asked for four times what
 * its downlink takes. The fleet simulator measured it (bench/sim/README.md, 2026-12-03): with the budget, 16 and
 * 100 nodes finish sooner and `busy` answers fall by two thirds.
 *
 * Pure bookkeeping, no timers: a download takes from it for each request and gives back when the request ends,
 * and one that found no room is woken (once) when some is given back.
 */
export class ReceiveBudget {
  readonly max: number
  #used = 0
  readonly #waiting = new Set<() => void>()

  constructor(max = DEFAULT_NODE_INFLIGHT) {
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new SchedulerError('SCHEDULER_INVALID_OPTIONS', `node inflight budget ${max}: want a positive integer`)
    }
    this.max = max
  }

  /** Requests in flight now, over the node's downloads. */
  get used(): number {
    return this.#used
  }

  /** How many more requests may start now; when none, `wake` runs once the next one ends. */
  room(wake?: () => void): number {
    const room = this.max - this.#used
    if (room <= 0 && wake !== undefined) this.#waiting.add(wake)
    return Math.max(0, room)
  }

  /** A request started (it may go past `max`: a caller that asked `room` first does not). */
  take(): void {
    this.#used++
  }

  /** A request ended: whoever found no room looks again. */
  give(): void {
    if (this.#used > 0) this.#used--
    if (this.#waiting.size === 0) return
    const waiting = [...this.#waiting]
    this.#waiting.clear()
    for (const wake of waiting) wake()
  }
}
