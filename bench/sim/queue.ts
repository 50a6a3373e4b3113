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

/** Delays that get a lane of their own (EventQueue.after); others go to the heap. */
const MAX_LANES = 16

/**
 * Events scheduled `delayMs` after now, for one fixed delay. Now only grows and each event takes the next sequence
 * number, so each lands at or after the one appended before it with a larger sequence number: the lane is in
 * (time, sequence) order just by appending, and taking its first entry is all a pop costs.
 */
class Lane {
  readonly delayMs: number
  readonly at: number[] = []
  readonly ord: number[] = []
  readonly fn: ((() => void) | undefined)[] = []
  head = 0

  constructor(delayMs: number) {
    this.delayMs = delayMs
  }

  get size(): number {
    return this.at.length - this.head
  }

  shift(): () => void {
    const i = this.head
    const fn = this.fn[i]!
    this.fn[i] = undefined
    if (++this.head === this.at.length) {
      this.at.length = 0
      this.ord.length = 0
      this.fn.length = 0
      this.head = 0
    } else if (this.head >= 4096 && 2 * this.head >= this.at.length) {
      this.at.splice(0, this.head)
      this.ord.splice(0, this.head)
      this.fn.splice(0, this.head)
      this.head = 0
    }
    return fn
  }
}

/**
 * The simulator's clock: events ordered by time, then by the order they were scheduled, so events at the same
 * instant run first-in first-out and a run is replayable. Time is virtual (milliseconds); nothing here waits on
 * the wall clock. Most events come a fixed delay after now (a scheduling pass at once, a message one link latency
 * later, a `busy` pause): each such delay has a lane that is already in order (Lane), and only the rest go to a
 * heap, so the event that runs next is the first of a lane head, the heap's top and the timers' top. Timers live
 * in a second heap under the same order: setting one takes the next sequence number, as scheduling an event
 * does, so it runs exactly where a fresh event would have.
 */
export class EventQueue {
  #now = 0
  #seq = 0
  #ran = 0
  readonly #at: number[] = []
  readonly #ord: number[] = []
  readonly #fn: (() => void)[] = []
  readonly #timers: Timer[] = []
  readonly #lanes: Lane[] = []

  get now(): number {
    return this.#now
  }

  /** Events and timers pending. */
  get size(): number {
    let n = this.#at.length + this.#timers.length
    for (const l of this.#lanes) n += l.size
    return n
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
    if (!(delayMs >= 0)) return this.at(this.#now + delayMs, fn)
    const lane = this.#lane(delayMs)
    if (lane === undefined) return this.at(this.#now + delayMs, fn)
    lane.at.push(this.#now + delayMs)
    lane.ord.push(this.#seq++)
    lane.fn.push(fn)
  }

  /** The lane for `delayMs`, made on first use while there is room for one more. */
  #lane(delayMs: number): Lane | undefined {
    const lanes = this.#lanes
    for (let i = 0; i < lanes.length; i++) if (lanes[i]!.delayMs === delayMs) return lanes[i]
    if (lanes.length >= MAX_LANES) return undefined
    const lane = new Lane(delayMs)
    lanes.push(lane)
    return lane
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
    const lanes = this.#lanes
    for (;;) {
      // The first of the heap's top, the timers' top and every lane's head: -2 = none, -1 = heap or timer.
      let from = -2
      let at = Number.POSITIVE_INFINITY
      let ord = Number.POSITIVE_INFINITY
      if (this.#at.length > 0) {
        from = -1
        at = this.#at[0]!
        ord = this.#ord[0]!
      }
      const t = timers.length > 0 ? timers[0]! : undefined
      const timerFirst = t !== undefined && (t.at < at || (t.at === at && t.ord < ord))
      if (timerFirst) {
        from = -1
        at = t.at
        ord = t.ord
      }
      for (let i = 0; i < lanes.length; i++) {
        const l = lanes[i]!
        const h = l.head
        if (h === l.at.length) continue
        const la = l.at[h]!
        if (la < at || (la === at && l.ord[h]! < ord)) {
          from = i
          at = la
          ord = l.ord[h]!
        }
      }
      if (from === -2) break
      if (at > end) break
      if (until?.() === true) break
      this.#ran++
      if (from >= 0) {
        this.#now = at
        lanes[from]!.shift()()
      } else if (timerFirst) {
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
