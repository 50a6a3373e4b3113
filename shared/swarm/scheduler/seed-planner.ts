import { Bitfield } from '../../chunks/bitfield.ts'
import {
  DEFAULT_RESERVE_MS,
  DEFAULT_RESERVE_PER_PEER,
  DEFAULT_RESERVE_TOTAL,
  DEFAULT_SEED_COPIES,
} from './constants.ts'
import { SchedulerError } from './errors.ts'
import type { SendMeter } from './send-meter.ts'

export interface SeedPlannerOptions {
  readonly chunkCount: number
  /** What the seeder holds now (copied); omitted = everything. A cold blob starts empty and grows with markHave. */
  readonly have?: Bitfield
  /** Unsent chunks advertised to one agent at a time, at most (default 4). */
  readonly reservePerPeer?: number
  /** Unsent chunks reserved over all agents; each agent gets ceil(total / agents), at least 1 (default 8). */
  readonly reserveTotal?: number
  /** A reservation not served within this time may be advertised to another agent as well (default 10 s). */
  readonly reserveMs?: number
  /**
   * The seeder's uplink as it measures it, shared by every blob it seeds. With it and `copies` > 1, an agent is
   * also told of a chunk already on its way to (or at) fewer than `copies` agents while the meter says the uplink
   * has room and no fresh chunk waits for it: spare uplink after super-seeding. The planner reports each send to
   * it (begin, end) and the chunks that wait.
   */
  readonly meter?: SendMeter
  /** Copies of a chunk the seeder may hand out while the meter has room, the first included (default 1: once). */
  readonly copies?: number
}

export type SeedPhase = 'seeding' | 'serving'

interface Agent {
  readonly known: Bitfield
  readonly advertised: Bitfield
  readonly reserved: Set<number>
  /** Chunks the seeder sent this agent that no other agent holds yet, with when they were sent. */
  readonly spreading: Map<number, number>
  /** Chunks advertised as extra copies (spare uplink) that this agent does not hold yet: true while promised. */
  readonly copies: Map<number, boolean>
}

/**
 * Super-seeding for a thin seeder. While some chunk is held by no connected agent, each agent is advertised only a
 * few chunks that nobody holds and nobody else has been promised, so the seeder's upload goes to distinct chunks
 * and agents fetch the rest from each other. As in BitTorrent's super-seeding, a chunk sent to an agent keeps
 * counting against that agent's quota until another agent is seen holding it: agents that pass chunks on quickly
 * get more of them, and a slow uploader is not made the only source of a large share of the blob. Once every chunk
 * is held by some agent, everything the seeder holds is advertised and the agents' own preference for peers keeps
 * the seeder's load low.
 *
 * Advertisements only grow (the wire has no "no longer have"). The planner is advice: the seeder still serves a
 * chunk it was not asked to advertise, and reports it with onServed.
 */
export class SeedPlanner {
  readonly chunkCount: number
  readonly #have: Bitfield
  readonly #holders: Uint32Array
  readonly #reservedBy: (string | undefined)[]
  readonly #reservedAt: Float64Array
  readonly #agents = new Map<string, Agent>()
  readonly #perPeer: number
  readonly #total: number
  readonly #reserveMs: number
  readonly #meter: SendMeter | undefined
  readonly #copies: number
  /** Extra copies of each chunk handed out (advertised beyond its first send). */
  readonly #copied: Uint8Array
  /** Sends of each chunk under way (begin … end). */
  readonly #sending: Uint16Array
  /** Chunks held by no connected agent. */
  #unheld: number
  /** Agents that still lack some chunk: the quota is shared among them. */
  #hungry = 0
  #served = 0

  constructor(opts: SeedPlannerOptions) {
    const n = opts.chunkCount
    if (!Number.isSafeInteger(n) || n < 0) throw new SchedulerError('SCHEDULER_INVALID_OPTIONS', `chunkCount ${n}`)
    if (opts.have !== undefined && opts.have.length !== n) {
      throw new SchedulerError('SCHEDULER_BITFIELD_LENGTH', `bitfield of ${opts.have.length}, want ${n}`)
    }
    this.chunkCount = n
    this.#have = opts.have?.clone() ?? Bitfield.full(n)
    this.#holders = new Uint32Array(n)
    this.#reservedBy = new Array<string | undefined>(n).fill(undefined)
    this.#reservedAt = new Float64Array(n)
    this.#perPeer = Math.max(1, opts.reservePerPeer ?? DEFAULT_RESERVE_PER_PEER)
    this.#total = Math.max(1, opts.reserveTotal ?? DEFAULT_RESERVE_TOTAL)
    this.#reserveMs = opts.reserveMs ?? DEFAULT_RESERVE_MS
    this.#meter = opts.meter
    this.#copies = Math.max(1, Math.min(255, opts.copies ?? DEFAULT_SEED_COPIES))
    this.#copied = new Uint8Array(n)
    this.#sending = new Uint16Array(n)
    this.#meter?.fresh(this.#have.count)
    this.#unheld = n
  }

  get phase(): SeedPhase {
    return this.#unheld === 0 && this.#have.complete ? 'serving' : 'seeding'
  }

  /** Chunk sends reported with onServed; the seeder's upload in chunks. */
  get served(): number {
    return this.#served
  }

  /** The seeder got chunk `index` (a cold blob filling from the origin). */
  markHave(index: number): void {
    const was = this.#waiting(index)
    this.#have.set(index)
    this.#tell(index, was)
  }

  /** The seeder starts sending chunk `index` to `peer` (its upload slot is taken). */
  begin(peer: string, index: number, now: number): void {
    const was = this.#waiting(index)
    this.#sending[index]!++
    const a = this.#agents.get(peer)
    // A promised copy is now an upload in flight: the meter counts it there.
    if (a?.copies.get(index) === true) {
      a.copies.set(index, false)
      this.#meter?.settle()
    }
    this.#meter?.begin(now)
    this.#tell(index, was)
  }

  /**
   * The send of chunk `index` begun at `startedAt` is over: `bytes` went out (0 when it failed or was cancelled). A
   * send that completed is reported with onServed as well.
   */
  end(index: number, startedAt: number, bytes: number, now: number): void {
    const was = this.#waiting(index)
    if (this.#sending[index]! > 0) this.#sending[index]!--
    this.#meter?.end(startedAt, bytes, now)
    // A completed send's chunk is about to be held (onServed): it is not fresh work waiting.
    if (bytes === 0) this.#tell(index, was)
  }

  /** A held chunk that no agent holds and none is being sent: fresh work for the seeder's uplink. */
  #waiting(c: number): boolean {
    return this.#have.has(c) && this.#holders[c] === 0 && this.#sending[c] === 0
  }

  #tell(c: number, was: boolean): void {
    const now = this.#waiting(c)
    if (now !== was) this.#meter?.fresh(now ? 1 : -1)
  }

  /** Registers an agent with what it already holds (a resumed download); advertiseFor adds unknown agents. */
  addPeer(peer: string, have?: Bitfield): void {
    const a = this.#agent(peer)
    if (have === undefined) return
    if (have.length !== this.chunkCount) {
      throw new SchedulerError('SCHEDULER_BITFIELD_LENGTH', `bitfield of ${have.length}, want ${this.chunkCount}`)
    }
    for (const c of have.indexes()) this.#learn(a, c)
  }

  removePeer(peer: string): void {
    const a = this.#agents.get(peer)
    if (a === undefined) return
    this.#agents.delete(peer)
    if (!a.known.complete) this.#hungry--
    for (const c of a.known.indexes()) {
      if (--this.#holders[c]! === 0) {
        this.#unheld++
        this.#tell(c, false)
      }
    }
    for (const c of a.reserved) if (this.#reservedBy[c] === peer) this.#reservedBy[c] = undefined
    for (const [c, promised] of a.copies) {
      this.#copied[c]!--
      if (promised) this.#meter?.settle()
    }
  }

  /** What to advertise to `peer` now: a superset of what it was told before. The result is a copy. */
  advertiseFor(peer: string, now: number): Bitfield {
    const a = this.#agent(peer)
    if (this.phase === 'serving') {
      for (const c of this.#have.indexes()) a.advertised.set(c)
      return a.advertised.clone()
    }
    for (const c of a.reserved) {
      if (this.#holders[c]! > 0 || a.known.has(c) || this.#reservedBy[c] !== peer) a.reserved.delete(c)
    }
    // A sent chunk is held against the quota so that another agent fetches it from this one. With no other agent
    // lacking chunks nobody will, and holding it back would only idle the seeder (a lone agent got `quota` chunks
    // per reserveMs).
    const alone = this.#hungry - (a.known.complete ? 0 : 1) <= 0
    for (const [c, at] of a.spreading) {
      if (alone || this.#holders[c]! > 1 || now - at >= this.#reserveMs) a.spreading.delete(c)
    }
    const quota = this.#quota()
    // Lowest index first: it is what every agent's in-order window wants, and what a cold blob has first.
    for (let c = 0; c < this.chunkCount && a.reserved.size + a.spreading.size < quota; c++) {
      if (!this.#have.has(c) || this.#holders[c]! > 0 || a.known.has(c) || a.reserved.has(c)) continue
      const owner = this.#reservedBy[c]
      if (owner !== undefined && owner !== peer && now - this.#reservedAt[c]! < this.#reserveMs) continue
      const was = this.#waiting(c)
      this.#reservedBy[c] = peer
      this.#tell(c, was)
      this.#reservedAt[c] = now
      a.reserved.add(c)
      a.advertised.set(c)
    }
    this.#copy(a, now)
    return a.advertised.clone()
  }

  /**
   * Spare uplink: an agent is told of the lowest chunk it lacks that is on its way to, or at, fewer than `copies`
   * agents, one such copy at a time per agent, while the meter has room for it (no fresh chunk waiting).
   */
  #copy(a: Agent, now: number): void {
    const meter = this.#meter
    if (meter === undefined || this.#copies <= 1) return
    for (let c = 0; c < this.chunkCount && a.copies.size === 0; c++) {
      if (!this.#have.has(c) || a.known.has(c) || a.advertised.has(c)) continue
      const held = this.#holders[c]!
      const out = held + this.#copied[c]! + (held === 0 && this.#reservedBy[c] !== undefined ? 1 : 0)
      // Nobody has it or was promised it: the fresh loop's (another agent's quota holds it); or enough copies.
      if (out === 0 || out >= this.#copies) continue
      if (!meter.room(now)) return
      meter.promise(now)
      this.#copied[c]!++
      a.copies.set(c, true)
      a.advertised.set(c)
    }
  }

  /** The seeder finished sending chunk `index` to `peer`. */
  onServed(peer: string, index: number, now: number): void {
    this.#served++
    const a = this.#agent(peer)
    if (this.#holders[index] === 0 && !a.known.has(index)) a.spreading.set(index, now)
    this.#learn(a, index)
  }

  /** `peer` announced it holds chunk `index` (from whoever). */
  onPeerHas(peer: string, index: number): void {
    this.#learn(this.#agent(peer), index)
  }

  #quota(): number {
    return Math.min(this.#perPeer, Math.max(1, Math.ceil(this.#total / Math.max(1, this.#hungry))))
  }

  #learn(a: Agent, c: number): void {
    if (!a.known.set(c)) return
    if (a.known.complete) this.#hungry--
    const was = this.#waiting(c)
    if (this.#holders[c]!++ === 0) this.#unheld--
    this.#tell(c, was)
    a.reserved.delete(c)
    // A copy it took from the seeder or from a peer: either way the promise is spent.
    const promised = a.copies.get(c)
    if (promised !== undefined) {
      a.copies.delete(c)
      this.#copied[c]!--
      if (promised) this.#meter?.settle()
    }
  }

  #agent(peer: string): Agent {
    let a = this.#agents.get(peer)
    if (a === undefined) {
      a = {
        known: new Bitfield(this.chunkCount),
        advertised: new Bitfield(this.chunkCount),
        reserved: new Set(),
        spreading: new Map(),
        copies: new Map(),
      }
      this.#agents.set(peer, a)
      if (!a.known.complete) this.#hungry++
    }
    return a
  }
}
