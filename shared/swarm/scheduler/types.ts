import type { PeerKind } from './peer-state.ts'

export type ChunkOutcome = 'ok' | 'bad' | 'failed' | 'busy'

/**
 * A receiver's answer to an offered chunk (DownloadScheduler.accept): taken; `have` = held (the sender counts it as
 * held there); `coming` = already in flight from someone (it may still fail: offer it again later); `full` = no room
 * for another chunk in flight now (offer again later).
 */
export type OfferAnswer = 'accept' | 'have' | 'coming' | 'full'

/**
 * The receiver's reply to an offer: its answer, and with 'accept' the chunk it takes, which may be another chunk the
 * sender holds when the offered one is held or coming (the sender gave a slot; the receiver knows best what to fill
 * it with).
 */
export interface OfferReply {
  readonly answer: OfferAnswer
  readonly index: number
}

export interface ChunkRequest {
  readonly peer: string
  readonly index: number
}

export interface SchedulerOptions {
  readonly chunkCount: number
  readonly chunkBytes: (index: number) => number
  /** Pipeline of a peer whose rate is unknown (default 4). Known peers get 2..maxInflightPerFastPeer by rate. */
  readonly maxInflightPerPeer?: number
  /** Cap of a fast peer's pipeline (default 16); set equal to maxInflightPerPeer to turn adaptivity off. */
  readonly maxInflightPerFastPeer?: number
  /** Transfer time a known peer's pipeline should cover beyond the chunk in service (default 500 ms). */
  readonly pipelineMs?: number
  /** Requests in flight for the whole blob, at most (default 32). */
  readonly maxInflightTotal?: number
  /**
   * Transfer time, at the rate this download has been receiving, that all its requests together may queue
   * (default 2000 ms; 0 turns the rate cap off). Bounds the queue on the node's downlink: without it, a thin or
   * shared downlink takes maxInflightTotal chunks per blob at once and every one of them outlives the hard timeout.
   */
  readonly inflightTotalMs?: number
  /** Requests in flight for the blob however slowly it has been arriving (default 2). */
  readonly minInflightTotal?: number
  /** Missing chunks right after the verified prefix that go first (default 4; 0 turns it off). */
  readonly inOrderWindow?: number
  /** Missing-chunk count at which in-flight chunks are also asked of a second holder (default 8; 0 = never). */
  readonly endgameRemaining?: number
  /** Copies of a chunk in flight during endgame (default 2). */
  readonly endgameCopies?: number
  /** No-progress window for a peer of unknown rate; ceiling of the rate-derived one (default 30 s). */
  readonly requestTimeoutMs?: number
  /** Floor of the rate-derived no-progress window (default 1 s). */
  readonly minTimeoutMs?: number
  /** Any request this old is re-assigned, even if nobody else holds its chunk (default 120 s). */
  readonly hardTimeoutMs?: number
  /** A known peer is late after slowFactor × its expected time without delivering (default 4). */
  readonly slowFactor?: number
  readonly banMs?: number
  readonly maxConsecutiveFailures?: number
  readonly failureBackoffMs?: number
  /** After a 'busy' answer, the peer gets no new request until one of ours completes or this passes (250 ms). */
  readonly busyBackoffMs?: number
  /**
   * Each further 'busy' in a row from a peer doubles its pause, up to this (default busyBackoffMs: no growth). Growth
   * to 2 s cut the fleet simulator's requests by a third at 100 nodes without changing its completion times, but
   * slowed small swarms (toy-swarm test: 1.12 → 1.36 × the bound), so it is off by default.
   */
  readonly maxBusyBackoffMs?: number
  /** 'busy' answers in a row after which each further one counts as a failure of its chunk (default 8). */
  readonly maxConsecutiveBusy?: number
  /**
   * Ban book shared by the downloads of one node (peer id → banned until): a peer caught lying in one blob's
   * download is shunned by every other download too, those under way included. Default: this scheduler's own.
   */
  readonly bans?: Map<string, number>
  /** Tie-break among equally rare chunks; pass a seeded one (seededRandom) for replayable runs. */
  readonly random?: () => number
  /**
   * Edge sites: set when this node knows its site. A chunk some same-site peer holds is asked only of same-site
   * peers; one no same-site peer holds is asked outside the site only from `outsideAt(index, now) <= now` (this
   * node's turn in the site election), and waited for until then.
   */
  readonly site?: SiteTurns
}

/** Who in a site fetches each chunk from outside it (SiteElection in shared/swarm/sites.ts). */
export interface SiteTurns {
  /** When this node may ask outside its site for chunk `index`: `now` or earlier for at once. */
  outsideAt(index: number, now: number): number
  /** A seeder answered `busy` for chunk `index` (it may have just sent it to another member of the site). */
  seederBusy?(index: number, now: number): void
  /** From when chunk `index` may be asked of peers of other sites (seeders may be asked before): `now` for now. */
  relaysAt?(index: number, now: number): number
}

export interface PeerStats {
  readonly id: string
  readonly kind: PeerKind
  readonly score: number
  readonly inflight: number
  readonly depth: number
  readonly bytesPerSec: number | undefined
  /** Sent a chunk that failed its hash; not asked until the ban ends (bans survive removePeer). */
  readonly banned: boolean
  /** Failed maxConsecutiveFailures times in a row; resting. */
  readonly backoff: boolean
}

export interface Cancellations {
  /** Requests the caller should abort on the wire; the scheduler has already forgotten them. */
  readonly cancel: readonly ChunkRequest[]
}
