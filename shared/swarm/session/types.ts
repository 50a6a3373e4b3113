import type { Bitfield, ChunkAttestation } from '../../chunks/index.ts'
import type { PeerKind, ReceiveBudget, SchedulerOptions, StallClocks } from '../scheduler/index.ts'

/**
 * A value now, or later. The agent's collaborators do I/O and answer with promises; the simulator's answer at once,
 * so a session driven by virtual time never waits on a microtask the event queue cannot see.
 */
export type MaybePromise<T> = T | Promise<T>

/** Time as the session sees it: the wall clock in the agent, the event queue's virtual time in the simulator. */
export interface SessionClock {
  now(): number
  /** Runs `fn` after `ms`. Never cancelled: the session ignores a timer that fires after it ended. */
  after(ms: number, fn: () => void): void
  /** Runs `fn` once the work under way is done (a microtask; the next event at the same instant). */
  soon(fn: () => void): void
}

export type ChunkAnswer =
  | { readonly kind: 'chunk'; readonly bytes: Uint8Array; readonly attestation?: ChunkAttestation | undefined }
  /** All the peer's upload slots are taken. */
  | { readonly kind: 'busy' }
  /** The peer does not hold the chunk. */
  | { readonly kind: 'none' }
  /** An oversized, mismatched or unparsable answer: a lie, not a hiccup. */
  | { readonly kind: 'malformed'; readonly error: Error }
  /** The peer hung up, timed out or could not be reached. */
  | { readonly kind: 'failed'; readonly error: Error }

/** One chunk request, as the session hands it to a fetcher. */
export interface ChunkCall {
  readonly peer: string
  readonly index: number
  /** Size of the chunk: a larger answer is malformed. */
  readonly maxBytes: number
  /** Some bytes of the answer arrived (not verified yet). */
  progress(): void
  /** The answer; only the first counts, and none after the call was aborted. */
  settle(answer: ChunkAnswer): void
}

export interface ChunkFetch {
  /** The session no longer wants the answer (timed out, cancelled, idle, or the session ended). */
  abort(): void
}

export interface ChunkFetcher {
  fetch(call: ChunkCall): ChunkFetch
  /**
   * Called before each scheduling pass. A fetcher that cannot report bytes as they arrive (the simulator's links,
   * whose flows are fluid) calls `progress()` here for every call whose bytes are flowing.
   */
  poll?(): void
}

/** Where holders' `have` answers go: the first one whole, then each new chunk. */
export interface HaveSink {
  /** `site`: the site the peer says it is in (edge sites; undefined for none, or a peer that predates sites). */
  addPeer(peer: string, kind: PeerKind, have: Bitfield, site?: string): void
  peerHas(peer: string, index: number): void
  /** The peer left (its long poll ended): its requests move elsewhere. */
  removePeer(peer: string): void
}

/** Who holds the blob: seeders, DHT providers, peers that asked us about it. */
export interface HolderSource {
  /** Starts following the holders known now (the seeders); their answers go to `sink` until `signal` aborts. */
  follow(sink: HaveSink, signal: AbortSignal): void
  /** Looks for more holders, every REDISCOVER_MS. */
  discover(signal: AbortSignal): void
}

/** What a chunk is checked against before it touches the disk. */
export interface ChunkVerifier {
  /** The trusted map's hash for this chunk, when a map is known. */
  fromMap(index: number): string | undefined
  /** Looks for the blob's signed map again (a cold blob the seeder has finished meanwhile); true once one is known. */
  recheckMap(opts: { readonly signal: AbortSignal; readonly timeoutMs: number }): MaybePromise<boolean>
  /** Whether the attestation is a trusted seeder's, for this chunk of this blob. */
  attested(attestation: ChunkAttestation, index: number, signal: AbortSignal): MaybePromise<boolean>
  /** Throws when the bytes do not hash to `chunk`. */
  check(index: number, chunk: string, bytes: Uint8Array): void
}

/** The partial blob the session fills. */
export interface PartialSink {
  /** Chunks proven and on disk. */
  has(index: number): boolean
  /** Those chunks at the session's start (a resumed download), so they are never asked for. */
  verified(): Iterable<number>
  /** Writes a proven chunk and makes it servable to peers. */
  write(index: number, bytes: Uint8Array, attestation: ChunkAttestation | undefined): MaybePromise<void>
}

export type RejectReason = 'unproven' | 'forged' | 'hash' | 'malformed'

/** What a session reports as it goes, for metrics and logs (all optional). */
export interface SessionEvents {
  /** The first chunk is on disk: the node may announce that it provides the blob. */
  firstChunk?(): void
  /** A proven chunk goes to the sink to be written (a duplicate endgame copy is not reported). */
  received?(peer: string, kind: PeerKind, index: number, bytes: number): void
  /** A chunk answer was thrown away; all but 'unproven' ban the peer. */
  rejected?(peer: string, index: number, reason: RejectReason, error?: Error): void
  /** A request came to nothing (hang-up, timeout, unreachable). */
  failed?(peer: string, index: number, error: Error): void
  /**
   * Edge sites: chunk `index` was asked of `peer`, outside this node's site, with the site's candidates this node
   * knew then (members it follows, askers, in the chunk's rendezvous order; itself included): who elected itself.
   */
  outside?(peer: string, index: number, candidates: readonly string[]): void
}

export interface DownloadSessionComponents {
  readonly clock: SessionClock
  readonly fetcher: ChunkFetcher
  readonly holders: HolderSource
  readonly verifier: ChunkVerifier
  readonly sink: PartialSink
  readonly events?: SessionEvents
}

export interface DownloadSessionInit {
  readonly chunkCount: number
  readonly chunkBytes: (index: number) => number
  /** No verified chunk (or no byte) for this long ends the session as stalled: the rest comes from the origin. */
  readonly stallTimeoutMs: number
  /** Tie-breaks of the scheduler: each node seeds its own, so nodes spread over different chunks. */
  readonly random: () => number
  /** The node's stall clocks: bytes of any of its blobs keep every download's byte clock going. */
  readonly stall: StallClocks
  /**
   * Chunk requests the node keeps in flight over all its downloads, shared by them (ReceiveBudget); none: each
   * download is bounded only by its own scheduler's cap.
   */
  readonly budget?: ReceiveBudget
  /** Peers caught lying, shared by the node's downloads: banned until the time given. */
  readonly bans?: Map<string, number>
  /** Ends the session (its requests are dropped, the result is the signal's reason). */
  readonly signal: AbortSignal
  /** Default TICK_MS. */
  readonly tickMs?: number
  /** Default REDISCOVER_MS; counted in ticks. */
  readonly rediscoverMs?: number
  /** Default CHUNK_IDLE_MS. */
  readonly chunkIdleMs?: number
  /**
   * Edge sites: this node's site, its own id and the blob's key (its digest). Same-site holders serve whatever they
   * hold; each chunk is fetched from outside by one member (the site election), and on a stall one member at a time
   * leaves for the origin. Undefined: no site, today's behaviour.
   */
  readonly site?: SessionSite
  /** Scheduler knobs beyond those the session derives (pipeline depth, inflight budget). */
  readonly scheduler?: Partial<
    Pick<SchedulerOptions, 'maxInflightPerPeer' | 'maxInflightPerFastPeer' | 'inflightTotalMs' | 'busyBackoffMs'>
  >
}

export interface SessionSite {
  readonly name: string
  readonly self: string
  readonly blob: string
  /** The acting member brings nothing in for this long and the next takes over (default: the stall timeout). */
  readonly takeoverMs?: number
  /** A node that has heard of no member waits this long before it fetches from outside alone (SITE_JOIN_MS). */
  readonly joinMs?: number
}

/** Requests a session made and how they ended. */
export interface SessionCounts {
  requests: number
  /** Chunks a peer offered and this node took (DownloadSession.offered): in flight without a request. */
  offers: number
  busy: number
  failed: number
  bad: number
  /** Moved elsewhere by the scheduler (late or past the hard timeout). */
  timedOut: number
  /** Endgame copies no longer needed. */
  cancelled: number
  /** Dropped after CHUNK_IDLE_MS without a byte. */
  idle: number
  /** Ticks past the stall timeout spent waiting, not leaving for the origin: another member of the site had the turn. */
  siteHeld: number
}
