import { DEFAULT_BURST_MS, MIN_DEFAULT_BURST_BYTES } from './constants.ts'

export interface TokenBucketOptions {
  /** Long-run rate; 0 or Infinity means unlimited. */
  readonly bytesPerSecond: number
  /** Bytes that may pass at once after a quiet spell; default 100 ms of rate, at least 64 KiB. */
  readonly burstBytes?: number
  /** Milliseconds clock (tests). */
  readonly now?: () => number
}

/**
 * Byte-rate limiter shared by every stream it throttles. `take` reserves bytes at once and waits
 * until the bucket has refilled enough to cover them; the balance may go negative, so a take
 * larger than the burst still passes (after its time) and takers are served in call order.
 */
export class TokenBucket {
  readonly bytesPerSecond: number
  readonly burstBytes: number
  readonly unlimited: boolean
  readonly #now: () => number
  #tokens: number
  #last: number

  constructor(opts: TokenBucketOptions) {
    const rate = opts.bytesPerSecond
    if (Number.isNaN(rate) || rate < 0) throw new RangeError(`bytesPerSecond must be >= 0, got ${rate}`)
    const burst = opts.burstBytes ?? Math.max(MIN_DEFAULT_BURST_BYTES, (rate * DEFAULT_BURST_MS) / 1000)
    if (Number.isNaN(burst) || burst < 0) throw new RangeError(`burstBytes must be >= 0, got ${burst}`)
    this.bytesPerSecond = rate
    this.burstBytes = burst
    this.unlimited = rate === 0 || rate === Number.POSITIVE_INFINITY
    this.#now = opts.now ?? (() => performance.now())
    this.#tokens = burst
    this.#last = this.#now()
  }

  /** Resolves when `n` bytes may pass. On abort the reservation is returned and the signal's reason thrown. */
  async take(n: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
    opts.signal?.throwIfAborted()
    if (this.unlimited || n <= 0) return
    this.#refill()
    this.#tokens -= n
    if (this.#tokens >= 0) return
    try {
      await wait((-this.#tokens / this.bytesPerSecond) * 1000, opts.signal)
    } catch (err) {
      this.#refill()
      this.#tokens = Math.min(this.burstBytes, this.#tokens + n)
      throw err
    }
  }

  /** Bytes that could pass now without waiting (negative while takers wait). */
  get available(): number {
    if (this.unlimited) return Number.POSITIVE_INFINITY
    this.#refill()
    return this.#tokens
  }

  #refill(): void {
    const now = this.#now()
    this.#tokens = Math.min(this.burstBytes, this.#tokens + ((now - this.#last) * this.bytesPerSecond) / 1000)
    this.#last = now
  }
}

// Global setTimeout rather than timers/promises, so tests can drive it with fake timers.
function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, Math.ceil(ms))
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
