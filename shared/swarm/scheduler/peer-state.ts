import type { Bitfield } from '../../chunks/bitfield.ts'
import { MIN_SCORE, RATE_WINDOW_MS, SCORE_PENALTY, SCORE_RECOVERY } from './constants.ts'

export type PeerKind = 'peer' | 'seeder'

export interface Request {
  readonly peer: PeerState
  readonly index: number
  readonly bytes: number
  readonly issuedAt: number
}

/**
 * One source's bookkeeping. The rate is bytes delivered over the time the peer had something in flight, which
 * reads the same whether the peer serves its requests one after another or all at once on parallel streams.
 */
export class PeerState {
  readonly id: string
  kind: PeerKind
  have: Bitfield
  /** In this node's site (edge sites): preferred for every chunk it holds. */
  local = false
  readonly inflight = new Map<number, Request>()
  inflightBytes = 0
  /** Offers its chunks (the scheduler never asks it; see DownloadScheduler.setOffers). */
  offers = false
  /** Counted in the scheduler's availability tallies (present, not banned, not backing off). */
  attached = false
  bannedUntil = 0
  backoffUntil = 0
  /** Said it was busy: no new request until one of ours completes or this time passes. */
  busyUntil = 0
  score = 1
  consecutiveFailures = 0
  /** 'busy' answers since the last delivery. */
  consecutiveBusy = 0
  /** Start of the current no-progress window: the last delivery, or when the pipeline went from empty to busy. */
  progressAt = 0
  /** Index in the scheduler's peer list and its per-peer arrays. */
  slot = -1
  #accBytes = 0
  #accMs = 0
  #lastEventAt = 0

  constructor(id: string, kind: PeerKind, have: Bitfield) {
    this.id = id
    this.kind = kind
    this.have = have
  }

  usableAt(now: number): boolean {
    return now >= this.bannedUntil && now >= this.backoffUntil
  }

  /** Undefined until the peer has been busy for a measurable time. Time spent without delivering drags it down. */
  get bytesPerSec(): number | undefined {
    return this.#accMs > 0 ? (this.#accBytes * 1000) / this.#accMs : undefined
  }

  add(req: Request, now: number): void {
    this.#touch(now)
    if (this.inflight.size === 0) this.progressAt = now
    this.inflight.set(req.index, req)
    this.inflightBytes += req.bytes
  }

  remove(index: number, now: number): Request | undefined {
    const req = this.inflight.get(index)
    if (req === undefined) return undefined
    this.#touch(now)
    this.inflight.delete(index)
    this.inflightBytes -= req.bytes
    return req
  }

  delivered(bytes: number, now: number): void {
    this.#touch(now)
    this.#accBytes += bytes
    this.progressAt = now
    this.busyUntil = 0
    this.consecutiveFailures = 0
    this.consecutiveBusy = 0
    this.score += (1 - this.score) * SCORE_RECOVERY
  }

  penalise(): void {
    this.score = Math.max(MIN_SCORE, this.score * SCORE_PENALTY)
  }

  #touch(now: number): void {
    if (this.inflight.size > 0 && now > this.#lastEventAt) {
      this.#accMs += now - this.#lastEventAt
      if (this.#accMs > RATE_WINDOW_MS) {
        this.#accBytes *= RATE_WINDOW_MS / this.#accMs
        this.#accMs = RATE_WINDOW_MS
      }
    }
    if (now > this.#lastEventAt) this.#lastEventAt = now
  }
}
