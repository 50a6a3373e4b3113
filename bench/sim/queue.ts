/**
 * A reschedulable event: one pending run of `fn` at most, moved in place by EventQueue.set. A flow's completion is
 * one: its rate changes many times before it ends, and a fresh event per change would leave the queue full of
 * stale ones (at 1,000 nodes most of the queue's work).
 */
export class Timer {
  readonly fn: () => void
  at = 0
  ord = 0
  /** Index in the queue's timer heap; -1 while not scheduled. */
  pos = -1

  constructor(fn: () => void) {
    this.fn = fn
  }

  get pending(): boolean {
    return this.pos >= 0
  }
}

/**
 * The simulator's clock: a binary heap of events ordered by time, then by the order they were scheduled, so
 * events at the same instant run first-in first-out and a run is replayable. Time is virtual (milliseconds);
 * nothing here waits on the wall clock. Timers live in a second heap under the same order: setting one takes the
 * next sequence number, as scheduling an event does, so it runs exactly where a fresh event would have.
 */
export class EventQueue {
  #now = 0
  #seq = 0
  #ran = 0
  readonly #at: number[] = []
  readonly #ord: number[] = []
  readonly #fn: (() => void)[] = []
  readonly #timers: Timer[] = []

  get now(): number {
    return this.#now
  }

  /** Events and timers pending. */
  get size(): number {
    return this.#at.length + this.#timers.length
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

  /** A timer that runs `fn` when set and due; not scheduled yet. */
  timer(fn: () => void): Timer {
    return new Timer(fn)
  }

  /** (Re)schedules `t` at `at` (never before now), in the place a new event scheduled now would take. */
  set(t: Timer, at: number): void {
    if (Number.isNaN(at)) throw new RangeError('event time is NaN')
    t.at = Math.max(at, this.#now)
    t.ord = this.#seq++
    if (t.pos < 0) {
      t.pos = this.#timers.length
      this.#timers.push(t)
      this.#timerUp(t.pos)
    } else {
      this.#timerUp(t.pos)
      this.#timerDown(t.pos)
    }
  }

  /** Unschedules `t` (a timer not pending is left alone). */
  clear(t: Timer): void {
    if (t.pos < 0) return
    const i = t.pos
    const last = this.#timers.pop()!
    t.pos = -1
    if (last === t) return
    this.#timers[i] = last
    last.pos = i
    this.#timerUp(i)
    this.#timerDown(last.pos)
  }

  /** Runs events in order until none is left, `until` returns true, or the next event is later than `endMs`. */
  run(opts: { readonly endMs?: number; readonly until?: () => boolean } = {}): void {
    const end = opts.endMs ?? Number.POSITIVE_INFINITY
    const until = opts.until
    const timers = this.#timers
    for (;;) {
      const hasEvent = this.#at.length > 0
      const t = timers.length > 0 ? timers[0]! : undefined
      if (!hasEvent && t === undefined) break
      const timerFirst =
        t !== undefined && (!hasEvent || t.at < this.#at[0]! || (t.at === this.#at[0]! && t.ord < this.#ord[0]!))
      if ((timerFirst ? t.at : this.#at[0]!) > end) break
      if (until?.() === true) break
      this.#ran++
      if (timerFirst) {
        this.#now = t.at
        this.clear(t)
        t.fn()
      } else {
        this.#pop()()
      }
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

  #timerUp(i: number): void {
    const h = this.#timers
    const t = h[i]!
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = h[parent]!
      if (!(t.at < p.at || (t.at === p.at && t.ord < p.ord))) break
      h[i] = p
      p.pos = i
      i = parent
    }
    h[i] = t
    t.pos = i
  }

  #timerDown(i: number): void {
    const h = this.#timers
    const n = h.length
    const t = h[i]!
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      let cv = h[l]!
      if (r < n) {
        const rv = h[r]!
        if (rv.at < cv.at || (rv.at === cv.at && rv.ord < cv.ord)) {
          c = r
          cv = rv
        }
      }
      if (!(cv.at < t.at || (cv.at === t.at && cv.ord < t.ord))) break
      h[i] = cv
      cv.pos = i
      i = c
    }
    h[i] = t
    t.pos = i
  }
}
