/**
 * The simulator's clock: a binary heap of events ordered by time, then by the order they were scheduled, so
 * events at the same instant run first-in first-out and a run is replayable. Time is virtual (milliseconds);
 * nothing here waits on the wall clock.
 */
export class EventQueue {
  #now = 0
  #seq = 0
  #ran = 0
  readonly #at: number[] = []
  readonly #ord: number[] = []
  readonly #fn: (() => void)[] = []

  get now(): number {
    return this.#now
  }

  get size(): number {
    return this.#at.length
  }

  /** Events run so far. */
  get ran(): number {
    return this.#ran
  }

  /** Runs `fn` at virtual time `at` (never before now: a past time means now). */
  at(at: number, fn: () => void): void {
    if (Number.isNaN(at)) throw new RangeError('event time is NaN')
    this.#push(Math.max(at, this.#now), this.#seq++, fn)
  }

  after(delayMs: number, fn: () => void): void {
    this.at(this.#now + delayMs, fn)
  }

  /** Runs events in order until none is left, `until` returns true, or the next event is later than `endMs`. */
  run(opts: { readonly endMs?: number; readonly until?: () => boolean } = {}): void {
    const end = opts.endMs ?? Number.POSITIVE_INFINITY
    while (this.#at.length > 0) {
      if (this.#at[0]! > end) break
      if (opts.until?.() === true) break
      const fn = this.#pop()
      this.#ran++
      fn()
    }
  }

  #less(i: number, j: number): boolean {
    const a = this.#at[i]!
    const b = this.#at[j]!
    return a < b || (a === b && this.#ord[i]! < this.#ord[j]!)
  }

  #swap(i: number, j: number): void {
    const at = this.#at[i]!
    const ord = this.#ord[i]!
    const fn = this.#fn[i]!
    this.#at[i] = this.#at[j]!
    this.#ord[i] = this.#ord[j]!
    this.#fn[i] = this.#fn[j]!
    this.#at[j] = at
    this.#ord[j] = ord
    this.#fn[j] = fn
  }

  #push(at: number, ord: number, fn: () => void): void {
    this.#at.push(at)
    this.#ord.push(ord)
    this.#fn.push(fn)
    let i = this.#at.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.#less(i, parent)) break
      this.#swap(i, parent)
      i = parent
    }
  }

  #pop(): () => void {
    const fn = this.#fn[0]!
    this.#now = this.#at[0]!
    const last = this.#at.length - 1
    this.#swap(0, last)
    this.#at.pop()
    this.#ord.pop()
    this.#fn.pop()
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < last && this.#less(l, m)) m = l
      if (r < last && this.#less(r, m)) m = r
      if (m === i) break
      this.#swap(i, m)
      i = m
    }
    return fn
  }
}
