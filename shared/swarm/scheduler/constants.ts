// Defaults of the download scheduler and the seed planner. Units are in the names.

/** Requests kept in flight to a peer whose rate is not known yet (Kraken pipelines 3, libtorrent starts near 4). */
export const DEFAULT_INFLIGHT_PER_PEER = 4
/** Cap for a fast peer, whose pipeline grows to cover `pipelineMs` of transfer. */
export const DEFAULT_INFLIGHT_PER_FAST_PEER = 16
/** Bounds the chunk buffers a download can hold at once (32 × 4 MiB = 128 MiB). */
export const DEFAULT_INFLIGHT_TOTAL = 32
/**
 * Transfer time, at the blob's recent receive rate, its requests together may queue: the node's downlink then holds
 * about this much work whatever the number of blobs, so requests finish well inside the hard timeout.
 */
export const DEFAULT_INFLIGHT_TOTAL_MS = 2_000
/** Requests a download keeps in flight however slowly its bytes arrive, and while its rate is unknown. */
export const DEFAULT_MIN_INFLIGHT_TOTAL = 2
/**
 * Chunk requests a node keeps in flight over all its downloads (ReceiveBudget). Enough to keep the downlink full
 * while senders each split their uplink over a few receivers (3 slots on an agent), and a round trip's worth of
 * `busy` answers on top; few enough that one node does not hold a dozen senders' slots at a fraction of its
 * downlink each. The fleet simulator (bench/sim/README.md, 2026-12-03): 4, 6, 8 and 12 at N = 16 gave slowest
 * nodes at 1.37, 1.29, 1.36 and 1.47 × T* (1.48 without).
 */
export const DEFAULT_NODE_INFLIGHT = 6
/** Shortest span a download's receive rate is measured over, so its first chunk does not read as a burst. */
export const MIN_RATE_SPAN_MS = 1_000
/** How much transfer time a known peer's pipeline should keep queued beyond the chunk it is sending. */
export const DEFAULT_PIPELINE_MS = 500
/** Chunks right after the verified prefix that go before rarest-first, so clients keep receiving bytes. */
export const DEFAULT_IN_ORDER_WINDOW = 4
/** Endgame starts when this few chunks are missing (Kraken: 3). */
export const DEFAULT_ENDGAME_REMAINING = 8
/** Copies of one chunk in flight at once during endgame. */
export const DEFAULT_ENDGAME_COPIES = 2
/** No-progress window for a peer of unknown rate, and the ceiling of the rate-derived window. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000
/** Floor of the rate-derived window, so jitter on a fast peer is not taken for a stall. */
export const DEFAULT_MIN_TIMEOUT_MS = 1_000
/** Backstop: a request this old is re-assigned even when no other peer holds its chunk. */
export const DEFAULT_HARD_TIMEOUT_MS = 120_000
/** A peer is late when it makes no progress for this many times its expected time. */
export const DEFAULT_SLOW_FACTOR = 4
/** A peer that sent a chunk failing its hash is shunned this long. */
export const DEFAULT_BAN_MS = 10 * 60_000
/** Consecutive failures after which a peer is rested for `failureBackoffMs`. */
export const DEFAULT_MAX_CONSECUTIVE_FAILURES = 3
export const DEFAULT_FAILURE_BACKOFF_MS = 5_000
/** Pause before asking a peer that answered 'busy' again, unless one of its transfers to us completes first. */
export const DEFAULT_BUSY_BACKOFF_MS = 250
/**
 * 'busy' answers in a row, with no delivery between them, after which each further one counts as a failure of
 * its chunk: a peer that advertises chunks and never has a free slot for them must not hold them hostage.
 */
export const DEFAULT_MAX_CONSECUTIVE_BUSY = 8

/** Busy time over which a peer's rate is averaged; older samples fade proportionally. */
export const RATE_WINDOW_MS = 10_000
/** Score moves towards 1 by this fraction on each good chunk. */
export const SCORE_RECOVERY = 0.2
/** Score is multiplied by this on each failure or timeout. */
export const SCORE_PENALTY = 0.5
export const MIN_SCORE = 0.01

/** Seed planner: unsent chunks advertised to one agent at a time, at most. */
export const DEFAULT_RESERVE_PER_PEER = 4
/** Seed planner: unsent chunks reserved across all agents, spread evenly (at least one each). */
export const DEFAULT_RESERVE_TOTAL = 8
/** Seed planner: a reservation not taken up within this time may be handed to another agent too. */
export const DEFAULT_RESERVE_MS = 10_000
/**
 * Seed planner: copies of a chunk the seeder may hand out while its SendMeter says it has room (the first copy
 * included). 1: each chunk once. With 4 the fleet simulator gained on a seeder 4 × a node's link and lost on one no
 * faster than a node (bench/sim/README.md, 2026-12-03, third pass), so it is not on by default.
 */
export const DEFAULT_SEED_COPIES = 1
/**
 * How far back a SendMeter looks for its fastest upload: long enough to catch an upload to an idle receiver, short
 * enough to forget the start of a rollout (the fleet simulator: 3, 5 and 7 s gave the same gains; with no limit a
 * seeder no faster than a node lost 20%).
 */
export const DEFAULT_FASTEST_UPLOAD_SPAN_MS = 5_000
/** How long a SendMeter counts a promised upload that has not begun. */
export const DEFAULT_SEND_METER_WINDOW_MS = 2_000
