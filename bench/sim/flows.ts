import type { EventQueue, Timer } from './queue.ts'

/**
 * The bandwidth model: every transfer is a fluid flow from the sender's uplink to the receiver's downlink, and
 * rates are max-min fair (what TCP flows behind token-bucket shapers roughly get). Each link has a water level: a
 * flow gets min(level of its uplink, level of its downlink), and a link's level is the share that fills it given
 * what its flows can get at their other end (Infinity while the link is not a bottleneck). A flow starting or
 * ending recomputes the two links it touches; a level that moves by more than `tolerance` propagates to the
 * links at the other ends of that link's flows, up to `maxUpdates` recomputations per change. With enough budget
 * this is the classic bottleneck-level iteration and settles on the max-min allocation; the budget only bounds
 * the cost of a change that ripples through a large swarm.
 */
export class Link {
  readonly name: string
  /** Bytes per millisecond; Infinity = unshaped. */
  readonly capacity: number
  readonly flows = new Set<Flow>()
  level = Number.POSITIVE_INFINITY
  /** Bytes that finished crossing this link (partial transfers of cancelled flows included). */
  bytes = 0
  /** FlowNet's marks for the rebalance under way (instead of per-call sets). */
  queuedIn = 0
  touchedIn = 0

  constructor(name: string, capacity: number) {
    if (!(capacity > 0)) throw new RangeError(`link ${name}: capacity must be positive, got ${capacity}`)
    this.name = name
    this.capacity = capacity
  }
}

export class Flow {
  readonly src: Link
  readonly dst: Link
  /** Every link the flow crosses: [src, dst], or [src, ...via, dst] (an edge site's WAN links). */
  readonly links: readonly Link[]
  readonly bytes: number
  readonly startedAt: number
  remaining: number
  rate = 0
  at: number
  done = false
  readonly onDone: () => void
  /** The flow's completion at its current rate; moved, not re-created, when the rate changes. */
  timer: Timer | undefined
  /** FlowNet's mark for the rebalance under way. */
  seenIn = 0

  constructor(src: Link, dst: Link, bytes: number, now: number, onDone: () => void, via: readonly Link[] = []) {
    this.src = src
    this.dst = dst
    this.links = via.length === 0 ? [src, dst] : [src, ...via, dst]
    this.bytes = bytes
    this.remaining = bytes
    this.startedAt = now
    this.at = now
    this.onDone = onDone
  }
}

export interface FlowNetOptions {
  /** Relative level change below which a recomputation does not propagate (default 0.001). */
  readonly tolerance?: number
  /** Link recomputations allowed per flow start or end (default 2000). */
  readonly maxUpdates?: number
}

export class FlowNet {
  readonly #q: EventQueue
  readonly #tolerance: number
  readonly #maxUpdates: number
  #active = 0
  #updates = 0
  /** Rebalances so far: the marks on links and flows say which rebalance saw them. */
  #epoch = 0
  readonly #queue: Link[] = []
  readonly #touched: Link[] = []
  #lims = new Float64Array(64)

  constructor(q: EventQueue, opts: FlowNetOptions = {}) {
    this.#q = q
    this.#tolerance = opts.tolerance ?? 0.001
    this.#maxUpdates = opts.maxUpdates ?? 2000
  }

  /** Flows under way. */
  get active(): number {
    return this.#active
  }

  /** Link level recomputations so far (the model's cost). */
  get updates(): number {
    return this.#updates
  }

  /**
   * Starts `bytes` from `src` to `dst`, across the links `via` as well (an edge site's WAN up and down links);
   * `onDone` runs when the last byte has left the sender.
   */
  start(src: Link, dst: Link, bytes: number, onDone: () => void, via: readonly Link[] = []): Flow {
    const f = new Flow(src, dst, bytes, this.#q.now, onDone, via)
    if (!(bytes > 0)) {
      f.done = true
      this.#q.at(this.#q.now, onDone)
      return f
    }
    for (const l of f.links) l.flows.add(f)
    this.#active++
    this.#rebalance(f.links, f)
    return f
  }

  /** Stops a flow; returns the bytes it had carried. A finished or cancelled flow is left alone. */
  cancel(f: Flow): number {
    if (f.done) return f.bytes - f.remaining
    this.#progress(f)
    this.#finish(f)
    this.#rebalance(f.links)
    return f.bytes - f.remaining
  }

  #progress(f: Flow): void {
    const now = this.#q.now
    if (now > f.at) {
      f.remaining = Math.max(0, f.remaining - f.rate * (now - f.at))
      f.at = now
    }
  }

  #finish(f: Flow): void {
    f.done = true
    if (f.timer !== undefined) this.#q.clear(f.timer)
    const carried = f.bytes - f.remaining
    for (const l of f.links) {
      l.flows.delete(f)
      l.bytes += carried
    }
    this.#active--
  }

  #levelOf(l: Link): number {
    if (l.capacity === Number.POSITIVE_INFINITY || l.flows.size === 0) return Number.POSITIVE_INFINITY
    if (this.#lims.length < l.flows.size) this.#lims = new Float64Array(2 * l.flows.size)
    let lims = this.#lims
    const n = l.flows.size
    if (n <= SMALL_LINK_FLOWS) {
      // Most links carry a handful of flows: sorted as they come, in place (the typed array's own sort would
      // give the same order, as levels are positive or Infinity, never NaN).
      let k = 0
      for (const f of l.flows) {
        const v = otherLevel(f, l)
        let j = k++
        while (j > 0 && lims[j - 1]! > v) {
          lims[j] = lims[j - 1]!
          j--
        }
        lims[j] = v
      }
    } else {
      let k = 0
      for (const f of l.flows) lims[k++] = otherLevel(f, l)
      lims = lims.subarray(0, n).sort()
    }
    let rem = l.capacity
    let k = n
    for (let i = 0; i < n; i++) {
      const lim = lims[i]!
      if (lim * k >= rem) return rem / k
      rem -= lim
      k--
    }
    return Number.POSITIVE_INFINITY
  }

  // Links queued, links touched and flows re-rated are marked with this rebalance's epoch rather than kept in
  // sets; the arrays keep the order the sets had, so the levels and the order of rate changes are the same.
  #rebalance(seeds: readonly Link[], fresh?: Flow): void {
    const epoch = ++this.#epoch
    const queue = this.#queue
    const touched = this.#touched
    queue.length = 0
    touched.length = 0
    for (const s of seeds) {
      if (s.queuedIn !== epoch) {
        s.queuedIn = epoch
        queue.push(s)
      }
      if (s.touchedIn !== epoch) {
        s.touchedIn = epoch
        touched.push(s)
      }
    }
    let budget = this.#maxUpdates
    for (let i = 0; i < queue.length && budget > 0; i++, budget--) {
      const l = queue[i]!
      l.queuedIn = 0
      const before = l.level
      const after = this.#levelOf(l)
      this.#updates++
      l.level = after
      if (after === before) continue
      if (l.touchedIn !== epoch) {
        l.touchedIn = epoch
        touched.push(l)
      }
      const big =
        before === Number.POSITIVE_INFINITY ||
        after === Number.POSITIVE_INFINITY ||
        Math.abs(after - before) > this.#tolerance * Math.max(after, before)
      if (!big) continue
      for (const f of l.flows) {
        for (const other of f.links) {
          if (other === l || other.queuedIn === epoch) continue
          other.queuedIn = epoch
          queue.push(other)
        }
      }
    }
    for (const l of touched) {
      for (const f of l.flows) {
        if (f.seenIn === epoch) continue
        f.seenIn = epoch
        this.#setRate(f, rateOf(f), f === fresh)
      }
    }
  }

  #setRate(f: Flow, rate: number, force: boolean): void {
    if (!force && rate === f.rate) return
    this.#progress(f)
    f.rate = rate
    const eta = rate === Number.POSITIVE_INFINITY ? 0 : f.remaining / rate
    f.timer ??= this.#q.timer(() => this.#complete(f))
    this.#q.set(f.timer, this.#q.now + eta)
  }

  #complete(f: Flow): void {
    if (f.done) return
    this.#progress(f)
    f.remaining = 0
    this.#finish(f)
    this.#rebalance(f.links)
    f.onDone()
  }
}

/** Up to this many flows on a link, #levelOf sorts their limits by insertion. */
const SMALL_LINK_FLOWS = 32

/** What a flow can get at its links other than `l`. */
function otherLevel(f: Flow, l: Link): number {
  if (f.links.length === 2) return (f.src === l ? f.dst : f.src).level
  let m = Number.POSITIVE_INFINITY
  for (const o of f.links) if (o !== l && o.level < m) m = o.level
  return m
}

function rateOf(f: Flow): number {
  let m = Number.POSITIVE_INFINITY
  for (const l of f.links) m = Math.min(m, l.level, l.capacity)
  return m
}
