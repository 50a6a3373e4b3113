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
 * The simulator's clock: a heap of events ordered by time, then by the order they were scheduled, so
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

  // A 4-ary heap, sifted with a hole (no swaps): half the levels of a binary heap, and each level's children
  // are adjacent. (time, sequence) is a total order, so events leave it in exactly the order a binary heap gave.

  #push(at: number, ord: number, fn: () => void): void {
    const ats = this.#at
    const ords = this.#ord
    const fns = this.#fn
    let i = ats.length
    ats.push(at)
    ords.push(ord)
    fns.push(fn)
    while (i > 0) {
      const parent = (i - 1) >> 2
      const pa = ats[parent]!
      if (!(at < pa || (at === pa && ord < ords[parent]!))) break
      ats[i] = pa
      ords[i] = ords[parent]!
      fns[i] = fns[parent]!
      i = parent
    }
    ats[i] = at
    ords[i] = ord
    fns[i] = fn
  }

  #pop(): () => void {
    const ats = this.#at
    const ords = this.#ord
    const fns = this.#fn
    const top = fns[0]!
    this.#now = ats[0]!
    const at = ats.pop()!
    const ord = ords.pop()!
    const fn = fns.pop()!
    const n = ats.length
    if (n === 0) return top
    let i = 0
    for (;;) {
      const first = 4 * i + 1
      if (first >= n) break
      let c = first
      let ca = ats[first]!
      let co = ords[first]!
      const last = Math.min(first + 4, n)
      for (let k = first + 1; k < last; k++) {
        const ka = ats[k]!
        if (ka < ca || (ka === ca && ords[k]! < co)) {
          c = k
          ca = ka
          co = ords[k]!
        }
      }
      if (!(ca < at || (ca === at && co < ord))) break
      ats[i] = ca
      ords[i] = co
      fns[i] = fns[c]!
      i = c
    }
    ats[i] = at
    ords[i] = ord
    fns[i] = fn
    return top
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
