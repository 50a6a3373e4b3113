import { Bitfield } from '../../chunks/bitfield.ts'
import {
  DEFAULT_BAN_MS,
  DEFAULT_BUSY_BACKOFF_MS,
  DEFAULT_ENDGAME_COPIES,
  DEFAULT_ENDGAME_REMAINING,
  DEFAULT_FAILURE_BACKOFF_MS,
  DEFAULT_HARD_TIMEOUT_MS,
  DEFAULT_IN_ORDER_WINDOW,
  DEFAULT_INFLIGHT_PER_FAST_PEER,
  DEFAULT_INFLIGHT_PER_PEER,
  DEFAULT_INFLIGHT_TOTAL,
  DEFAULT_INFLIGHT_TOTAL_MS,
  DEFAULT_MIN_INFLIGHT_TOTAL,
  DEFAULT_MAX_CONSECUTIVE_BUSY,
  DEFAULT_MAX_CONSECUTIVE_FAILURES,
  DEFAULT_MIN_TIMEOUT_MS,
  DEFAULT_PIPELINE_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SLOW_FACTOR,
  MIN_RATE_SPAN_MS,
  RATE_WINDOW_MS,
} from './constants.ts'
import { SchedulerError } from './errors.ts'
import { type PeerKind, PeerState, type Request } from './peer-state.ts'
import { permutation } from './random.ts'
import type { Cancellations, ChunkOutcome, ChunkRequest, OfferReply, PeerStats, SchedulerOptions } from './types.ts'

/** tick()'s answer when nothing can have timed out yet: one frozen object, not a new one per call. */
const NONE_TIMED_OUT: { readonly timedOut: readonly ChunkRequest[] } = Object.freeze({ timedOut: Object.freeze([]) })

type Settings = Required<Omit<SchedulerOptions, 'chunkBytes' | 'random' | 'bans' | 'site'>>

interface Round {
  readonly now: number
  readonly free: PeerState[]
  readonly out: ChunkRequest[]
  readonly typicalRate: number
  /** Requests in flight allowed this round (maxInflightTotal, or less while bytes arrive slowly). */
  readonly cap: number
  /** Earliest time a chunk held back for the site election may be asked outside the site. */
  wakeAt: number
}

/**
 * Decides which chunk to ask of which peer, BitTorrent style, for one blob. Pure: no timers and no I/O, time is
 * passed in, randomness is injected, so the agent's downloader and the fleet simulator drive the same code.
 *
 * Policy, in order: the few chunks right after the verified prefix (clients read in order); then rarest-first,
 * ties broken by a per-scheduler random order so agents spread out; then, at the tail, endgame duplicates. Each
 * chunk goes to the holder expected to finish it first (queued bytes / observed rate / score). A seeder is asked
 * only for chunks no usable peer holds, or after a peer failed that chunk: seeder upload is the scarce resource.
 */
export class DownloadScheduler {
  readonly chunkCount: number
  readonly #s: Settings
  readonly #bytes: Float64Array
  readonly #meanChunkBytes: number
  readonly #have: Bitfield
  /** Usable holders per chunk, all kinds / kind 'peer' only. */
  readonly #avail: Uint32Array
  readonly #peerAvail: Uint32Array
  /** Usable same-site holders per chunk (edge sites). */
  readonly #localAvail: Uint32Array
  readonly #site: SchedulerOptions['site']
  readonly #order: Uint32Array
  /** Scratch for next(): the union of the free peers' bitfields, in the bitfield's byte form. */
  readonly #freeHeld: Uint8Array
  readonly #peers = new Map<string, PeerState>()
  /** #peers' values in the map's order: the per-call loops walk an array, not a map iterator. */
  readonly #peerList: PeerState[] = []
  /**
   * What next() reads of every peer on every call, by slot (the peer's index in #peerList), kept in step with the
   * PeerState by #sync: attached, requests in flight, pipeline depth, end of the busy pause, and the bitfield's
   * bytes (a row of #rowBytes per slot). At scale next() runs on most events, and walking ~40 scattered peer objects
   * (each with a Map and a Bitfield behind it) per call was most of its cost.
   */
  #slotAttached = new Uint8Array(8)
  #slotInflight = new Uint32Array(8)
  #slotDepth = new Float64Array(8)
  #slotBusyUntil = new Float64Array(8)
  /** The peer's bytesPerSec, NaN while unknown. */
  #slotRate = new Float64Array(8)
  /** 1 for a peer that offers its chunks (OfferPlanner): next() never asks it, its offers are taken by accept(). */
  #slotOffers = new Uint8Array(8)
  #noOffersScratch = new Uint8Array(8)
  #slotHave: Uint8Array
  readonly #rowBytes: number
  /** Scratch for next(): the free peers' slots; and the in-order window's chunks (marked by round). */
  #freeSlots = new Uint32Array(8)
  readonly #windowMark: Uint32Array
  #windowRound = 0
  /** Scratch for next()'s rarest-first order: candidates, their holder counts, and a counting sort's counts. */
  readonly #cand: Uint32Array
  readonly #candK: Uint32Array
  readonly #sorted: Uint32Array
  #kCount = new Uint32Array(64)
  /** Peers not attached: #advance has nothing to re-admit while this is 0 and no ban is known. */
  #detachedCount = 0
  /**
   * No detached peer is usable before this time: a lower bound on their ban and backoff ends, lowered by every
   * #detach and recomputed by #advance's scan. A peer's ban and backoff ends only grow, so while no ban is known and
   * time is before it, #advance has nothing to re-admit and skips its scan (the hot path at scale).
   */
  #readmitAt = Number.POSITIVE_INFINITY
  /**
   * No request can time out before this time: the minimum over peers with requests in flight of their
   * progressAt + the shortest no-progress window, and of their requests' issuedAt + hardTimeoutMs. Values only
   * grow between the full scans in tick(), which recompute it, so until then tick() has nothing to look at.
   */
  #quietUntil = Number.POSITIVE_INFINITY
  /**
   * Bumped by every change next() reads (chunks held and asked for, holders, peers, their pipelines and busy marks,
   * chunks to avoid). When a round outside endgame finds nothing to ask for, what it found depends only on that
   * state and on which peers' `busy` pauses have ended, so until either changes next() can answer [] at once: the
   * agent's loop calls it on every `have` update, most of them for chunks already held or asked for.
   */
  #version = 0
  #idleVersion = -1
  #idleUntil = 0
  readonly #reqs = new Map<number, Request[]>()
  /** Peers that failed, timed out on or corrupted a chunk: asked for it again only when nobody else holds it. */
  readonly #avoid = new Map<number, Set<string>>()
  readonly #bans: Map<string, number>
  #total = 0
  #prefix = 0
  #now = 0
  /** When the first request was asked for; verified chunk bytes by arrival, for the download's receive rate. */
  #startedAt: number | undefined
  /**
   * Arrivals in order, [#arrivalHead, #arrivalTail) still in the rate window: each chunk arrives once, so chunkCount
   * places suffice and none is reused.
   */
  readonly #arrivalAt: Float64Array
  readonly #arrivalBytesOf: Float64Array
  #arrivalHead = 0
  #arrivalTail = 0
  /** Sum of #arrivals' bytes, kept as they come and go: next() asks for the cap on every call. */
  #arrivalBytes = 0

  constructor(opts: SchedulerOptions) {
    const n = opts.chunkCount
    if (!Number.isSafeInteger(n) || n < 0) throw new SchedulerError('SCHEDULER_INVALID_OPTIONS', `chunkCount ${n}`)
    const perPeer = opts.maxInflightPerPeer ?? DEFAULT_INFLIGHT_PER_PEER
    this.#s = {
      chunkCount: n,
      maxInflightPerPeer: perPeer,
      maxInflightPerFastPeer: Math.max(perPeer, opts.maxInflightPerFastPeer ?? DEFAULT_INFLIGHT_PER_FAST_PEER),
      pipelineMs: opts.pipelineMs ?? DEFAULT_PIPELINE_MS,
      maxInflightTotal: opts.maxInflightTotal ?? DEFAULT_INFLIGHT_TOTAL,
      inflightTotalMs: opts.inflightTotalMs ?? DEFAULT_INFLIGHT_TOTAL_MS,
      minInflightTotal: opts.minInflightTotal ?? DEFAULT_MIN_INFLIGHT_TOTAL,
      inOrderWindow: opts.inOrderWindow ?? DEFAULT_IN_ORDER_WINDOW,
      endgameRemaining: opts.endgameRemaining ?? DEFAULT_ENDGAME_REMAINING,
      endgameCopies: opts.endgameCopies ?? DEFAULT_ENDGAME_COPIES,
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      minTimeoutMs: opts.minTimeoutMs ?? DEFAULT_MIN_TIMEOUT_MS,
      hardTimeoutMs: opts.hardTimeoutMs ?? DEFAULT_HARD_TIMEOUT_MS,
      slowFactor: opts.slowFactor ?? DEFAULT_SLOW_FACTOR,
      banMs: opts.banMs ?? DEFAULT_BAN_MS,
      maxConsecutiveFailures: opts.maxConsecutiveFailures ?? DEFAULT_MAX_CONSECUTIVE_FAILURES,
      failureBackoffMs: opts.failureBackoffMs ?? DEFAULT_FAILURE_BACKOFF_MS,
      busyBackoffMs: opts.busyBackoffMs ?? DEFAULT_BUSY_BACKOFF_MS,
      maxBusyBackoffMs: opts.maxBusyBackoffMs ?? opts.busyBackoffMs ?? DEFAULT_BUSY_BACKOFF_MS,
      maxConsecutiveBusy: opts.maxConsecutiveBusy ?? DEFAULT_MAX_CONSECUTIVE_BUSY,
    }
    for (const k of ['maxInflightPerPeer', 'maxInflightTotal', 'minInflightTotal'] as const) {
      if (!Number.isSafeInteger(this.#s[k]) || this.#s[k] < 1) {
        throw new SchedulerError('SCHEDULER_INVALID_OPTIONS', `${k} must be a positive integer`)
      }
    }
    this.chunkCount = n
    this.#bans = opts.bans ?? new Map()
    this.#site = opts.site
    this.#bytes = new Float64Array(n)
    let sum = 0
    for (let i = 0; i < n; i++) {
      const b = opts.chunkBytes(i)
      if (!(b > 0)) throw new SchedulerError('SCHEDULER_INVALID_OPTIONS', `chunk ${i} has ${b} bytes`)
      this.#bytes[i] = b
      sum += b
    }
    this.#meanChunkBytes = n > 0 ? sum / n : 1
    this.#have = new Bitfield(n)
    this.#avail = new Uint32Array(n)
    this.#localAvail = new Uint32Array(n)
    this.#peerAvail = new Uint32Array(n)
    this.#order = permutation(n, opts.random ?? Math.random)
    this.#freeHeld = new Uint8Array(Math.ceil(n / 8))
    this.#rowBytes = Math.ceil(n / 8)
    this.#slotHave = new Uint8Array(8 * this.#rowBytes)
    this.#windowMark = new Uint32Array(n)
    this.#arrivalAt = new Float64Array(n)
    this.#arrivalBytesOf = new Float64Array(n)
    this.#cand = new Uint32Array(n)
    this.#candK = new Uint32Array(n)
    this.#sorted = new Uint32Array(n)
  }

  get done(): boolean {
    return this.#have.complete
  }

  get missing(): number {
    return this.chunkCount - this.#have.count
  }

  /** Length of the verified prefix: chunks [0, contiguous) can be streamed to clients. */
  get contiguous(): number {
    while (this.#prefix < this.chunkCount && this.#have.has(this.#prefix)) this.#prefix++
    return this.#prefix
  }

  /** Requests in flight, endgame duplicates included. */
  get inflight(): number {
    return this.#total
  }

  has(index: number): boolean {
    return this.#have.has(index)
  }

  /** Missing chunks no usable source holds: the downloader's cue to ask a seeder to fetch, or go to the origin. */
  unavailable(now = this.#now): number {
    this.#advance(now)
    let n = 0
    for (let c = 0; c < this.chunkCount; c++) if (this.#avail[c] === 0 && !this.#have.has(c)) n++
    return n
  }

  /** A chunk verified locally (resumed from disk, or delivered by another path). */
  markHave(index: number, now = this.#now): Cancellations {
    this.#advance(now)
    this.#version++
    if (!this.#have.set(index)) return { cancel: [] }
    this.#avoid.delete(index)
    return { cancel: this.#dropChunk(index, now) }
  }

  /**
   * Adds a source, or replaces the bitfield of a known one. `have` is copied. `local`: the peer says it is in this
   * node's site (edge sites), so it is asked first for whatever it holds.
   */
  addPeer(id: string, kind: PeerKind, have: Bitfield, local = false): void {
    this.#version++
    if (have.length !== this.chunkCount) {
      throw new SchedulerError('SCHEDULER_BITFIELD_LENGTH', `bitfield of ${have.length}, want ${this.chunkCount}`)
    }
    let p = this.#peers.get(id)
    if (p === undefined) {
      p = new PeerState(id, kind, have.clone())
      p.local = local
      p.bannedUntil = this.#bans.get(id) ?? 0
      this.#peers.set(id, p)
      p.slot = this.#peerList.length
      this.#peerList.push(p)
      this.#growSlots(this.#peerList.length)
      this.#detachedCount++
    } else {
      this.#detach(p)
      p.kind = kind
      p.local = local
      p.have = have.clone()
    }
    this.#syncHave(p)
    this.#sync(p)
    if (p.usableAt(this.#now)) this.#attach(p)
    else this.#readmitAt = Math.min(this.#readmitAt, Math.max(p.bannedUntil, p.backoffUntil))
  }

  peerHas(id: string, index: number): void {
    const p = this.#peers.get(id)
    if (p === undefined || !p.have.set(index)) return
    this.#slotHave[p.slot * this.#rowBytes + (index >> 3)]! |= 0x80 >> (index & 7)
    if (!p.attached) return
    // A chunk held or asked for already is skipped by next(): no new request can come of this.
    if (!this.#have.has(index) && !this.#reqs.has(index)) this.#version++
    this.#avail[index]!++
    if (p.kind === 'peer') this.#peerAvail[index]!++
    if (p.local) this.#localAvail[index]!++
  }

  /** Forgets a source; its requests return to the pool (the caller aborts them with the connection). */
  removePeer(id: string, now = this.#now): void {
    const p = this.#peers.get(id)
    if (p === undefined) return
    this.#advance(now)
    this.#version++
    for (const r of [...p.inflight.values()]) this.#drop(r, now)
    this.#detach(p)
    this.#peers.delete(id)
    this.#peerList.splice(p.slot, 1)
    this.#detachedCount--
    // The peers after it move down one slot.
    for (let i = p.slot; i < this.#peerList.length; i++) {
      const q = this.#peerList[i]!
      q.slot = i
      this.#syncHave(q)
      this.#sync(q)
    }
    p.slot = -1
  }

  /**
   * Requests in flight allowed now: enough to keep `inflightTotalMs` of transfer queued at the rate verified chunks
   * arrived over the last RATE_WINDOW_MS, within [minInflightTotal, maxInflightTotal]. Each of a node's downloads
   * measures its own share of the downlink, so together they queue about that much time on it.
   */
  inflightCap(now = this.#now): number {
    const { maxInflightTotal: max, minInflightTotal: min, inflightTotalMs } = this.#s
    if (inflightTotalMs <= 0) return max
    const started = this.#startedAt ?? now
    const span = Math.min(RATE_WINDOW_MS, Math.max(MIN_RATE_SPAN_MS, now - started))
    while (this.#arrivalHead < this.#arrivalTail && this.#arrivalAt[this.#arrivalHead]! < now - span) {
      this.#arrivalBytes -= this.#arrivalBytesOf[this.#arrivalHead++]!
    }
    // +1: the chunk being received is not queued work.
    const cap = Math.ceil(((this.#arrivalBytes / span) * inflightTotalMs) / this.#meanChunkBytes) + 1
    return Math.max(Math.min(min, max), Math.min(max, cap))
  }

  /**
   * New requests to issue now; `room`: at most this many more (the node's ReceiveBudget, shared with its other
   * downloads).
   */
  next(now: number, room = Number.POSITIVE_INFINITY): ChunkRequest[] {
    this.#advance(now)
    this.#startedAt ??= now
    // No room at the node (most calls at scale, with the ReceiveBudget full): the cap is #total at most. The rate
    // window inflightCap moves along only drops old arrivals, the same ones however many calls it takes.
    if (room <= 0) return []
    const cap = Math.min(this.inflightCap(now), this.#total + room)
    if (this.done || this.#total >= cap) return []
    if (this.#idleVersion === this.#version && now < this.#idleUntil) return []
    this.#idleVersion = -1
    const list = this.#peerList
    const attached = this.#slotAttached
    const inflight = this.#slotInflight
    const depth = this.#slotDepth
    const busyUntil = this.#slotBusyUntil
    // Peers that offer are asked only in the endgame: the last chunks come sooner asked for than waited for.
    const offers = this.missing <= this.#s.endgameRemaining ? this.#noOffers() : this.#slotOffers
    const freeSlots = this.#freeSlots
    let nFree = 0
    // The first time a peer with room in its pipeline comes back from a `busy` pause.
    let idleUntil = Number.POSITIVE_INFINITY
    for (let i = 0; i < list.length; i++) {
      if (attached[i] === 0 || offers[i] === 1 || inflight[i]! >= depth[i]!) continue
      const b = busyUntil[i]!
      if (now >= b) freeSlots[nFree++] = i
      else if (b < idleUntil) idleUntil = b
    }
    if (nFree === 0) {
      this.#idle(idleUntil)
      return []
    }
    const free: PeerState[] = []
    for (let j = 0; j < nFree; j++) free.push(list[freeSlots[j]!]!)
    const round: Round = { now, free, out: [], typicalRate: this.#typicalRate(), cap, wakeAt: idleUntil }
    // Chunks no free peer holds cannot be assigned this round: one byte test skips them (the free peers only shrink).
    const held = this.#freeHeld
    const rowBytes = this.#rowBytes
    const rows = this.#slotHave
    held.fill(0)
    for (let j = 0; j < nFree; j++) {
      const at = freeSlots[j]! * rowBytes
      for (let k = 0; k < rowBytes; k++) held[k]! |= rows[at + k]!
    }

    const mark = this.#windowMark
    const roundId = ++this.#windowRound
    if (roundId === 0xffffffff) {
      mark.fill(0)
      this.#windowRound = 1
    }
    const inWindow = this.#windowRound
    let windowSize = 0
    for (let c = this.contiguous; c < this.chunkCount && windowSize < this.#s.inOrderWindow; c++) {
      if (this.#have.has(c)) continue
      mark[c] = inWindow
      windowSize++
      if ((held[c >> 3]! & (0x80 >> (c & 7))) !== 0 && !this.#reqs.has(c)) this.#tryAssign(c, round)
      if (this.#saturated(round)) return round.out
    }

    // Rarest by peer holders, so a chunk only a seeder holds (one it handed us to spread) comes first: a stable
    // counting sort of the candidates (in #order) by their number of peer holders.
    const cand = this.#cand
    const candK = this.#candK
    let nCand = 0
    let maxK = 0
    for (const c of this.#order) {
      if ((held[c >> 3]! & (0x80 >> (c & 7))) === 0) continue
      if (this.#have.has(c) || this.#reqs.has(c) || this.#avail[c] === 0 || mark[c] === inWindow) continue
      const k = this.#peerAvail[c]!
      cand[nCand] = c
      candK[nCand++] = k
      if (k > maxK) maxK = k
    }
    if (nCand > 0) {
      if (this.#kCount.length < maxK + 2) this.#kCount = new Uint32Array(2 * (maxK + 2))
      const count = this.#kCount
      count.fill(0, 0, maxK + 2)
      for (let j = 0; j < nCand; j++) count[candK[j]! + 1]!++
      for (let k = 1; k <= maxK + 1; k++) count[k]! += count[k - 1]!
      const sorted = this.#sorted
      for (let j = 0; j < nCand; j++) sorted[count[candK[j]!]!++] = cand[j]!
      for (let j = 0; j < nCand; j++) {
        this.#tryAssign(sorted[j]!, round)
        if (this.#saturated(round)) return round.out
      }
    }

    if (this.missing <= this.#s.endgameRemaining) this.#endgame(round)
    else if (round.out.length === 0) this.#idle(round.wakeAt)
    return round.out
  }

  /** next() found nothing to ask for: the same holds until the state changes or `until` (a busy pause ends). */
  #idle(until: number): void {
    this.#idleVersion = this.#version
    this.#idleUntil = until
  }

  /**
   * The verdict on a chunk from `peer`: ok (verified), bad (hash mismatch), failed (error, refused, aborted) or
   * busy (the peer declined because its upload slots are taken: no penalty, the chunk goes back to the pool and
   * is likely fetched from whoever received it meanwhile, which is how a new chunk fans out instead of queueing
   * at its first holder).
   */
  onChunk(peer: string, index: number, now: number, outcome: ChunkOutcome): Cancellations {
    this.#advance(now)
    this.#version++
    const p = this.#peers.get(peer)
    const req = p?.inflight.get(index)
    if (req !== undefined) this.#drop(req, now)
    if (outcome === 'ok') {
      // A late arrival after a timeout still counts: the bytes are verified.
      if (p !== undefined) {
        p.delivered(this.#bytes[index] ?? 0, now)
        this.#sync(p)
        this.#noteProgress(p)
      }
      if (!this.#have.has(index)) {
        const bytes = this.#bytes[index] ?? 0
        this.#arrivalAt[this.#arrivalTail] = now
        this.#arrivalBytesOf[this.#arrivalTail++] = bytes
        this.#arrivalBytes += bytes
      }
      return this.markHave(index, now)
    }
    if (outcome === 'bad') {
      const until = now + this.#s.banMs
      this.#bans.set(peer, until)
      if (p === undefined) return { cancel: [] }
      this.#avoidPeer(index, peer)
      p.bannedUntil = until
      p.penalise()
      this.#detach(p)
      const cancel: ChunkRequest[] = []
      for (const r of [...p.inflight.values()]) {
        this.#drop(r, now)
        cancel.push({ peer, index: r.index })
      }
      return { cancel }
    }
    if (outcome === 'busy') {
      if (p === undefined) return { cancel: [] }
      const { busyBackoffMs, maxBusyBackoffMs } = this.#s
      p.busyUntil = now + Math.min(maxBusyBackoffMs, busyBackoffMs * 2 ** p.consecutiveBusy)
      this.#sync(p)
      if (req !== undefined && p.kind === 'seeder') this.#site?.seederBusy?.(index, now)
      // Busy without end is a refusal: from then on, until it delivers, each 'busy' fails its chunk.
      if (req === undefined || ++p.consecutiveBusy <= this.#s.maxConsecutiveBusy) return { cancel: [] }
    }
    if (p !== undefined && req !== undefined) this.#failed(p, index, now)
    return { cancel: [] }
  }

  /**
   * Bytes of a chunk from `peer` are arriving (not verified yet). The peer is making progress, so it is not late
   * however long the chunk takes: on a thin or crowded downlink moving the request elsewhere would only throw the
   * bytes away. The hard timeout still bounds each request, so a peer trickling bytes cannot hold a chunk forever.
   */
  onProgress(peer: string, now: number): void {
    if (now > this.#now) this.#now = now
    const p = this.#peers.get(peer)
    if (p !== undefined && p.inflight.size > 0 && now > p.progressAt) p.progressAt = now
  }

  /**
   * `id` offers its chunks (a sender that picks who gets its next free upload slot, OfferPlanner): from now on
   * next() does not ask it for anything before the endgame, so a swarm of such peers sends no request to be turned away `busy`; what it
   * holds still counts as available (the seeder is not asked for it), and its offers come in through accept().
   */
  setOffers(id: string, offers = true): void {
    const p = this.#peers.get(id)
    if (p === undefined || p.offers === offers) return
    this.#version++
    p.offers = offers
    this.#sync(p)
  }

  /**
   * `id` offers chunk `index`: 'accept' when this download takes it (the chunk is then in flight from `id`, as an
   * accepted request is, and ends with onChunk like one), else why not (OfferAnswer). Taken when the chunk is missing and
   * asked of nobody (else the rarest other chunk `id` is known to hold that is), and this download and the node have room for another request in flight (`room`: the node's
   * ReceiveBudget; the download's own inflightCap). A peer not known yet is added, holding just that chunk. What
   * arrives is still proven like any chunk: an offer only decides who sends it.
   */
  accept(id: string, index: number, now: number, room = Number.POSITIVE_INFINITY): OfferReply {
    this.#advance(now)
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.chunkCount) return { answer: 'have', index }
    let p = this.#peers.get(id)
    let take = index
    if (this.#have.has(index) || this.#reqs.has(index)) {
      // The sender gave a slot: fill it with the rarest chunk it holds that is missing here and asked of nobody.
      take = p?.attached === true ? this.#rarestFrom(p) : -1
      if (take < 0) return { answer: this.#have.has(index) ? 'have' : 'coming', index }
    }
    this.#startedAt ??= now
    if (room <= 0 || this.#total >= this.inflightCap(now)) return { answer: 'full', index }
    if (p === undefined) {
      const have = new Bitfield(this.chunkCount)
      have.set(index)
      this.addPeer(id, 'peer', have)
      p = this.#peers.get(id)!
      p.offers = true
      this.#sync(p)
    } else this.peerHas(id, index)
    if (!p.attached) return { answer: 'full', index }
    this.#issue(p, take, now)
    return { answer: 'accept', index: take }
  }

  /** The rarest chunk (by peer holders, in this download's order) `p` holds that is missing and asked of nobody. */
  #rarestFrom(p: PeerState): number {
    let best = -1
    let bestK = 0
    for (const c of this.#order) {
      if (!p.have.has(c) || this.#have.has(c) || this.#reqs.has(c)) continue
      const k = this.#peerAvail[c]!
      if (best < 0 || k < bestK) {
        best = c
        bestK = k
      }
    }
    return best
  }

  /** A request that came to nothing: the chunk prefers other holders; repeated failures rest the peer. */
  #failed(p: PeerState, index: number, now: number): void {
    this.#avoidPeer(index, p.id)
    p.penalise()
    if (++p.consecutiveFailures >= this.#s.maxConsecutiveFailures) {
      p.consecutiveFailures = 0
      p.backoffUntil = now + this.#s.failureBackoffMs
      this.#detach(p)
    }
  }

  /**
   * Slow-peer detection. A peer is late when it delivered nothing for slowFactor × the time its queue should take
   * at its observed rate (clamped to [minTimeoutMs, requestTimeoutMs]; requestTimeoutMs while its rate is
   * unknown). A late peer's requests are re-assigned, but only those another source could serve: re-asking the
   * only holder gains nothing, so those wait for the transport's failure or the hard timeout.
   */
  tick(now: number): { readonly timedOut: readonly ChunkRequest[] } {
    this.#advance(now)
    // The margin keeps the skip safe against rounding in the comparisons below (times are well under 2^40 ms).
    if (now < this.#quietUntil - 1) return NONE_TIMED_OUT
    const timedOut: ChunkRequest[] = []
    const quietMs = this.#quietMs()
    let quietUntil = Number.POSITIVE_INFINITY
    for (const p of this.#peerList) {
      if (p.inflight.size === 0) continue
      const late = now - p.progressAt > this.#allowedMs(p)
      const moved: Request[] = []
      for (const r of p.inflight.values()) {
        if (now - r.issuedAt >= this.#s.hardTimeoutMs || (late && this.#hasAlternative(r.index, p))) moved.push(r)
      }
      if (moved.length === 0) {
        quietUntil = Math.min(quietUntil, this.#peerQuietUntil(p, quietMs))
        continue
      }
      for (const r of moved) {
        this.#drop(r, now)
        this.#avoidPeer(r.index, p.id)
        timedOut.push({ peer: p.id, index: r.index })
      }
      p.penalise()
      p.progressAt = now
      // A peer late round after round (silent, or trickling bytes) would otherwise take a fresh pipeline of
      // chunks each time: it is rested like one that fails. A seeder is only ever slow, and often the only holder.
      if (p.kind === 'peer' && ++p.consecutiveFailures >= this.#s.maxConsecutiveFailures) {
        p.consecutiveFailures = 0
        p.backoffUntil = now + this.#s.failureBackoffMs
        this.#detach(p)
      }
      if (p.inflight.size > 0) quietUntil = Math.min(quietUntil, this.#peerQuietUntil(p, quietMs))
    }
    this.#quietUntil = quietUntil
    return { timedOut }
  }

  /** The shortest no-progress window #allowedMs can give any peer. */
  #quietMs(): number {
    return Math.min(this.#s.requestTimeoutMs, this.#s.minTimeoutMs)
  }

  /** When `p` (with requests in flight) could first be late, or one of its requests reach the hard timeout. */
  #peerQuietUntil(p: PeerState, quietMs: number): number {
    let t = p.progressAt + quietMs
    for (const r of p.inflight.values()) t = Math.min(t, r.issuedAt + this.#s.hardTimeoutMs)
    return t
  }

  /** `p`'s progressAt was set (possibly to an earlier time than before): keep #quietUntil a lower bound. */
  #noteProgress(p: PeerState): void {
    if (p.inflight.size > 0) this.#quietUntil = Math.min(this.#quietUntil, p.progressAt + this.#quietMs())
  }

  peerStats(): readonly PeerStats[] {
    return [...this.#peers.values()].map((p) => ({
      id: p.id,
      kind: p.kind,
      score: p.score,
      inflight: p.inflight.size,
      depth: this.#depth(p),
      bytesPerSec: p.bytesPerSec,
      banned: this.#now < p.bannedUntil,
      backoff: this.#now < p.backoffUntil,
    }))
  }

  #saturated(round: Round): boolean {
    return round.free.length === 0 || this.#total >= round.cap
  }

  /**
   * A second copy of an in-flight chunk goes to a free holder only when that holder is expected to deliver it
   * sooner than the current one, so small blobs are not fetched twice just because slots are idle.
   */
  #endgame(round: Round): void {
    const cands: { c: number; remainingMs: number }[] = []
    for (const [c, rs] of this.#reqs) {
      if (rs.length >= this.#s.endgameCopies) continue
      let remainingMs = Number.POSITIVE_INFINITY
      for (const r of rs) remainingMs = Math.min(remainingMs, this.#remainingMs(r.peer, round))
      cands.push({ c, remainingMs })
    }
    // The chunk expected last is the one a second copy helps most.
    cands.sort((a, b) => b.remainingMs - a.remainingMs || a.c - b.c)
    for (const { c, remainingMs } of cands) {
      this.#tryAssign(c, round, this.#reqs.get(c), remainingMs)
      if (this.#saturated(round)) return
    }
  }

  /** Time until `p` empties its queue; a peer already past its estimate is presumed to take as long again. */
  #remainingMs(p: PeerState, round: Round): number {
    const eta = p.progressAt + (p.inflightBytes * 1000) / Math.max(1, p.bytesPerSec ?? round.typicalRate)
    return eta > round.now ? eta - round.now : round.now - p.progressAt
  }

  #tryAssign(c: number, round: Round, taken?: readonly Request[], limitMs = Number.POSITIVE_INFINITY): void {
    const tier = this.#tier(c)
    if (tier === 0) return
    const avoid = this.#avoid.get(c)
    const site = this.#siteRule(c, round)
    if (site === 'wait') return
    // A second copy in flight (endgame) comes only from within the site: across the WAN it would cross it twice.
    if (taken !== undefined && site === 'any' && this.#site !== undefined) return
    // A seeder just turned this node away for c: it may be on its way into the site through another member.
    let seedersOnly = false
    if (site === 'any' && this.#site?.relaysAt !== undefined) {
      const at = this.#site.relaysAt(c, round.now)
      if (at > round.now) {
        seedersOnly = true
        if (at < round.wakeAt) round.wakeAt = at
      }
    }
    const bytes = this.#bytes[c]!
    // The free peers' bitfields and rates, read from their slots (see #sync).
    const rows = this.#slotHave
    const rowBytes = this.#rowBytes
    const rates = this.#slotRate
    const byte = c >> 3
    const bit = 0x80 >> (c & 7)
    let best = -1
    let bestCost = 0
    for (let i = 0; i < round.free.length; i++) {
      const p = round.free[i]!
      const slot = p.slot
      if ((rows[slot * rowBytes + byte]! & bit) === 0) continue
      if (taken?.some((r) => r.peer === p)) continue
      if (site === 'local') {
        if (!p.local || avoid?.has(p.id)) continue
      } else if (site === 'local-again') {
        if (!p.local) continue
      } else if (this.#site !== undefined) {
        // From outside the site, the seeder competes with other sites' peers on expected time: each is a WAN hop,
        // and the site election already keeps the seeder to one copy of a chunk per site.
        // Within the seeder's hold a seeder that failed c (busy past maxConsecutiveBusy) is still asked: it is the
        // one that may serve it without a second copy crossing the WAN.
        if (seedersOnly) {
          if (p.kind !== 'seeder') continue
        } else if (tier !== 3 && avoid?.has(p.id)) continue
      } else {
        if (tier === 1 && (p.kind !== 'peer' || avoid?.has(p.id))) continue
        if (tier === 2 && (p.kind !== 'seeder' || avoid?.has(p.id))) continue
      }
      const known = rates[slot]!
      const rate = Math.max(1, Number.isNaN(known) ? round.typicalRate : known)
      // Expected time to deliver this chunk behind the peer's queue, inflated for an unreliable peer.
      const cost = ((p.inflightBytes + bytes) * 1000) / rate / p.score
      if (cost < limitMs && (best < 0 || cost < bestCost)) {
        best = i
        bestCost = cost
      }
    }
    if (best < 0) return
    const p = round.free[best]!
    this.#issue(p, c, round.now)
    round.out.push({ peer: p.id, index: c })
    if (p.inflight.size >= this.#depth(p)) round.free.splice(best, 1)
  }

  /** Zeros as long as #slotOffers: next()'s view of the peers in the endgame. */
  #noOffers(): Uint8Array {
    if (this.#noOffersScratch.length < this.#slotOffers.length)
      this.#noOffersScratch = new Uint8Array(this.#slotOffers.length)
    return this.#noOffersScratch
  }

  /** Chunk c is now in flight from `p` (asked of it, or an offer of it accepted). */
  #issue(p: PeerState, c: number, now: number): void {
    const req: Request = { peer: p, index: c, bytes: this.#bytes[c]!, issuedAt: now }
    p.add(req, now)
    this.#sync(p)
    this.#quietUntil = Math.min(this.#quietUntil, p.progressAt + this.#quietMs(), now + this.#s.hardTimeoutMs)
    const rs = this.#reqs.get(c)
    if (rs === undefined) this.#reqs.set(c, [req])
    else rs.push(req)
    this.#total++
    this.#version++
  }

  /**
   * Edge sites: 'local' when a usable same-site peer that has not failed chunk c holds it (it is asked of no one
   * else, even while those peers are busy: the LAN is the cheap path); 'local-again' when the only same-site holders
   * failed it: asked again, since going outside would put a second copy on the WAN, and the member that brought it in
   * is the one the site election names, so nobody else would (a holder that keeps failing, or lies, only delays the
   * blob to the stall timeout, when one member at a time goes to the origin); 'wait' when no member holds it and it
   * is another member's turn to bring it in (round.wakeAt learns when to look again); 'any' otherwise (no site, or
   * this node's turn).
   */
  #siteRule(c: number, round: Round): 'local' | 'local-again' | 'wait' | 'any' {
    const site = this.#site
    if (site === undefined) return 'any'
    const all = this.#localAvail[c]!
    let local = all
    const avoid = this.#avoid.get(c)
    if (local > 0 && avoid !== undefined) {
      for (const id of avoid) {
        const p = this.#peers.get(id)
        if (p !== undefined && p.local && p.attached && p.have.has(c)) local--
      }
    }
    if (local > 0) return 'local'
    if (all > 0) return 'local-again'
    const at = site.outsideAt(c, round.now)
    if (at <= round.now) return 'any'
    if (at < round.wakeAt) round.wakeAt = at
    return 'wait'
  }

  /**
   * Which holders may serve chunk c: 1 = peers (a seeder is not asked for what a peer holds), 2 = seeders (no
   * peer holds it), 3 = anyone, including those that already failed it (nobody else holds it). 0 = no holder.
   */
  #tier(c: number): 0 | 1 | 2 | 3 {
    const all = this.#avail[c]!
    if (all === 0) return 0
    let peers = this.#peerAvail[c]!
    let seeders = all - peers
    const avoid = this.#avoid.get(c)
    if (avoid !== undefined) {
      for (const id of avoid) {
        const p = this.#peers.get(id)
        if (p === undefined || !p.attached || !p.have.has(c)) continue
        if (p.kind === 'peer') peers--
        else seeders--
      }
    }
    return peers > 0 ? 1 : seeders > 0 ? 2 : 3
  }

  #hasAlternative(c: number, p: PeerState): boolean {
    return this.#avail[c]! - (p.attached && p.have.has(c) ? 1 : 0) > 0
  }

  #depth(p: PeerState): number {
    const rate = p.bytesPerSec
    if (rate === undefined) return this.#s.maxInflightPerPeer
    const want = 1 + Math.ceil((rate * this.#s.pipelineMs) / 1000 / this.#meanChunkBytes)
    return Math.min(this.#s.maxInflightPerFastPeer, Math.max(Math.min(2, this.#s.maxInflightPerPeer), want))
  }

  #allowedMs(p: PeerState): number {
    const rate = p.bytesPerSec
    if (rate === undefined) return this.#s.requestTimeoutMs
    const expected = (p.inflightBytes * 1000) / Math.max(1, rate)
    return Math.min(this.#s.requestTimeoutMs, Math.max(this.#s.minTimeoutMs, this.#s.slowFactor * expected))
  }

  #typicalRate(): number {
    let sum = 0
    let n = 0
    const rate = this.#slotRate
    const attached = this.#slotAttached
    for (let i = 0; i < this.#peerList.length; i++) {
      const r = rate[i]!
      if (!Number.isNaN(r) && attached[i] === 1) {
        sum += r
        n++
      }
    }
    return n > 0 ? sum / n : 1
  }

  #avoidPeer(c: number, id: string): void {
    this.#version++
    if (this.#have.has(c)) return
    let s = this.#avoid.get(c)
    if (s === undefined) {
      s = new Set()
      this.#avoid.set(c, s)
    }
    s.add(id)
  }

  #drop(req: Request, now: number): void {
    this.#version++
    req.peer.remove(req.index, now)
    this.#sync(req.peer)
    const rs = this.#reqs.get(req.index)
    if (rs !== undefined) {
      const i = rs.indexOf(req)
      if (i >= 0) {
        rs.splice(i, 1)
        this.#total--
      }
      if (rs.length === 0) this.#reqs.delete(req.index)
    }
  }

  #dropChunk(c: number, now: number): ChunkRequest[] {
    const rs = this.#reqs.get(c)
    if (rs === undefined) return []
    const cancel = rs.map((r) => ({ peer: r.peer.id, index: c }))
    for (const r of [...rs]) this.#drop(r, now)
    return cancel
  }

  /** Moves time forward, applies bans other downloads made, and re-admits peers whose ban or backoff has ended. */
  #advance(now: number): void {
    if (now > this.#now) this.#now = now
    if (this.#detachedCount === 0 && this.#bans.size === 0) return
    if (this.#bans.size === 0 && this.#now < this.#readmitAt) return
    let readmitAt = Number.POSITIVE_INFINITY
    for (const p of this.#peerList) {
      const banned = this.#bans.get(p.id)
      if (banned !== undefined && banned > p.bannedUntil) {
        p.bannedUntil = banned
        if (!p.usableAt(this.#now)) this.#detach(p)
      }
      if (!p.attached && p.usableAt(this.#now)) this.#attach(p)
      if (!p.attached) readmitAt = Math.min(readmitAt, Math.max(p.bannedUntil, p.backoffUntil))
    }
    this.#readmitAt = readmitAt
  }

  #attach(p: PeerState): void {
    if (p.attached) return
    p.attached = true
    this.#slotAttached[p.slot] = 1
    this.#version++
    this.#detachedCount--
    const isPeer = p.kind === 'peer'
    for (const c of p.have.indexes()) {
      this.#avail[c]!++
      if (isPeer) this.#peerAvail[c]!++
      if (p.local) this.#localAvail[c]!++
    }
  }

  /** Copies what next() reads of `p` into its slot (after any change to it). */
  #sync(p: PeerState): void {
    const i = p.slot
    this.#slotAttached[i] = p.attached ? 1 : 0
    this.#slotInflight[i] = p.inflight.size
    this.#slotDepth[i] = this.#depth(p)
    this.#slotBusyUntil[i] = p.busyUntil
    this.#slotRate[i] = p.bytesPerSec ?? Number.NaN
    this.#slotOffers[i] = p.offers ? 1 : 0
  }

  /** Copies `p`'s bitfield into its row. */
  #syncHave(p: PeerState): void {
    const row = this.#slotHave.subarray(p.slot * this.#rowBytes, (p.slot + 1) * this.#rowBytes)
    row.fill(0)
    p.have.orInto(row)
  }

  /** Room in the per-slot arrays for `n` peers. */
  #growSlots(n: number): void {
    if (n <= this.#slotAttached.length) return
    const cap = Math.max(n, 2 * this.#slotAttached.length)
    const grow = <T extends Uint8Array | Uint32Array | Float64Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(cap * per)
      b.set(a)
      return b
    }
    this.#slotAttached = grow(this.#slotAttached, (k) => new Uint8Array(k))
    this.#slotInflight = grow(this.#slotInflight, (k) => new Uint32Array(k))
    this.#slotDepth = grow(this.#slotDepth, (k) => new Float64Array(k))
    this.#slotBusyUntil = grow(this.#slotBusyUntil, (k) => new Float64Array(k))
    this.#slotRate = grow(this.#slotRate, (k) => new Float64Array(k))
    this.#slotOffers = grow(this.#slotOffers, (k) => new Uint8Array(k))
    this.#slotHave = grow(this.#slotHave, (k) => new Uint8Array(k), this.#rowBytes)
    this.#freeSlots = new Uint32Array(cap)
  }

  #detach(p: PeerState): void {
    if (!p.attached) return
    p.attached = false
    this.#slotAttached[p.slot] = 0
    this.#version++
    this.#detachedCount++
    this.#readmitAt = Math.min(this.#readmitAt, Math.max(p.bannedUntil, p.backoffUntil))
    const isPeer = p.kind === 'peer'
    for (const c of p.have.indexes()) {
      this.#avail[c]!--
      if (isPeer) this.#peerAvail[c]!--
      if (p.local) this.#localAvail[c]!--
    }
  }
}
