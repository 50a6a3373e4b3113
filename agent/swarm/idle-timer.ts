/** The error an IdleTimer aborts with. */
export class IdleTimeoutError extends Error {
  override name = 'IdleTimeoutError'
  readonly code = 'IDLE_TIMEOUT'
}

/**
 * An abort signal that fires after `ms` without a `touch()`: a no-progress window rather than a deadline. `stop()`
 * clears the timer (idempotent); a stopped or fired timer ignores touches.
 */
export class IdleTimer {
  readonly #ms: number
  readonly #controller = new AbortController()
  #timer: NodeJS.Timeout | undefined

  constructor(ms: number) {
    if (!(ms > 0)) throw new RangeError(`idle window must be positive, got ${ms}`)
    this.#ms = ms
    this.#arm()
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /** Restarts the window (Timeout.refresh: no new timer per call, as this runs for every part of a chunk). */
  touch(): void {
    this.#timer?.refresh()
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#controller.abort(new IdleTimeoutError(`nothing received for ${this.#ms} ms`))
    }, this.#ms)
    this.#timer.unref()
  }
}
