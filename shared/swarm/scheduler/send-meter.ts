import { DEFAULT_FASTEST_UPLOAD_SPAN_MS, DEFAULT_SEND_METER_WINDOW_MS } from './constants.ts'
import { SchedulerError } from './errors.ts'

/** Weight of the newest upload in the typical upload rate (an exponential average). */
const UPLOAD_RATE_WEIGHT = 0.2

/**
 * A seeder's uplink as it can measure it alone, with no configured link rate: what its upload slots carry now
 * against what they carried at their best. It knows its uploads in flight (`begin` … `end`), a typical upload's
 * rate (bytes over the upload's own duration, averaged) and the fastest an upload went over the last few seconds;
 * its slots at their best carry `slots` × that fastest rate. It has room for one more upload when the uploads in
 * flight and those promised, each at the typical rate, plus one at the fastest rate, fit in that; and never while a
 * fresh chunk (one it holds that no receiver holds and none is being sent) waits for its uplink. On a full uplink
 * its uploads share it, every recent upload is slow, and the slots at their best add up to about what is in flight;
 * with slow receivers one upload to an idle receiver shows what a slot can carry.
 *
 * The fleet simulator measured this rule (bench/sim/README.md, "third pass"): it finds the spare uplink of a seeder
 * 4 × a node's (N = 16, thin origin, N = 8) but still slows a seeder no faster than a node by ~2% (cold), so the
 * planner's `copies` that use it are off by default. The fastest upload ever (not the recent one) read a quarter of
 * such a link, from four uploads sharing it at the start, as a slot's best: eight slots read as twice the link.
 *
 * Pure bookkeeping: time is passed in.
 */
export class SendMeter {
  readonly slots: number
  readonly windowMs: number
  readonly fastestSpanMs: number
  /** Start times of the uploads in flight. */
  readonly #inflight: number[] = []
  #uploadBps = 0
  #fastestBps = 0
  /** Uploads that ended within the last fastestSpanMs, as [end, bytes per second]. */
  readonly #recent: [number, number][] = []
  /** Chunks held that no receiver holds and none is being sent: fresh work waiting for the uplink. */
  #fresh = 0
  /** When each promised upload (not begun yet) was promised; each dropped once settled or after a window. */
  readonly #promised: number[] = []

  constructor(slots: number, windowMs = DEFAULT_SEND_METER_WINDOW_MS, fastestSpanMs = DEFAULT_FASTEST_UPLOAD_SPAN_MS) {
    if (!Number.isSafeInteger(slots) || slots < 1) {
      throw new SchedulerError('SCHEDULER_INVALID_OPTIONS', `send meter slots ${slots}: want a positive integer`)
    }
    if (!(windowMs > 0)) throw new SchedulerError('SCHEDULER_INVALID_OPTIONS', `send meter window ${windowMs} ms`)
    this.slots = slots
    this.windowMs = windowMs
    this.fastestSpanMs = fastestSpanMs
  }

  /** Uploads in flight now. */
  get inflight(): number {
    return this.#inflight.length
  }

  /** A typical upload's rate (recent uploads, averaged), in bytes per second; 0 before the first. */
  get uploadRate(): number {
    return this.#uploadBps
  }

  /** The fastest an upload that ended in the last fastestSpanMs went, in bytes per second. */
  get fastestRate(): number {
    return this.#fastestBps
  }

  /** Fresh chunks waiting for the uplink. */
  get freshWaiting(): number {
    return this.#fresh
  }

  /** +1 when a chunk becomes fresh work waiting (see the class), −1 when it stops being. */
  fresh(delta: number): void {
    this.#fresh = Math.max(0, this.#fresh + delta)
  }

  /** An upload starts now. */
  begin(now: number): void {
    this.#inflight.push(now)
  }

  /** The upload begun at `startedAt` is over: `bytes` went out (0: it failed or was cancelled). */
  end(startedAt: number, bytes: number, now: number): void {
    const i = this.#inflight.indexOf(startedAt)
    if (i >= 0) this.#inflight.splice(i, 1)
    // Shorter than a millisecond says nothing about the link (a buffered write).
    if (bytes <= 0 || now - startedAt < 1) return
    const one = (bytes * 1000) / (now - startedAt)
    this.#recent.push([now, one])
    while (this.#recent.length > 0 && this.#recent[0]![0] <= now - this.fastestSpanMs) this.#recent.shift()
    let fastest = 0
    for (const [, r] of this.#recent) fastest = Math.max(fastest, r)
    this.#fastestBps = fastest
    this.#uploadBps = this.#uploadBps === 0 ? one : this.#uploadBps + (one - this.#uploadBps) * UPLOAD_RATE_WEIGHT
  }

  /** Whether one more upload fits beside those in flight and promised. */
  room(now: number): boolean {
    if (this.#fastestBps === 0 || this.#fresh > 0) return false
    while (this.#promised.length > 0 && this.#promised[0]! <= now - this.windowMs) this.#promised.shift()
    const busy = (this.#inflight.length + this.#promised.length) * this.#uploadBps
    return busy + this.#fastestBps <= this.slots * this.#fastestBps
  }

  /** An upload was promised (room said yes): it counts against the room until `settle` or a window passes. */
  promise(now: number): void {
    this.#promised.push(now)
  }

  /** A promised upload began or will not be asked for: it no longer counts as promised. */
  settle(): void {
    this.#promised.shift()
  }
}
