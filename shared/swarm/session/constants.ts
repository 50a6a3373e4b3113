// Timing of a download session. Units are in the names.

/** The loop looks at its requests, timeouts and stall clock at least this often, whatever else wakes it. */
export const TICK_MS = 100
/** Holders are looked for again (DHT providers, peers that asked us, seeders whose long poll ended) this often. */
export const REDISCOVER_MS = 1000
/** A chunk with neither a map entry nor an attestation makes the session look for the signed map at most this often. */
export const MAP_RECHECK_MS = 500
/** How long one look for the signed map may take before the chunk counts as unproven. */
export const MAP_RECHECK_TIMEOUT_MS = 2000
/**
 * A chunk request whose answer brings no byte for this long is dropped, whatever the scheduler thinks of the peer.
 * It is a no-progress window, not a deadline: on a thin or crowded link a 4 MiB chunk may take longer than this
 * while its bytes flow, and cutting it would throw them away (the fleet benchmark saw exactly that). The client's
 * request timeout and the scheduler's hard timeout bound the whole request.
 */
export const CHUNK_IDLE_MS = 10_000
/**
 * A request that has brought no byte for this long stops counting against the node's ReceiveBudget (it stays in
 * flight and may still deliver): the budget is there to share the downlink among transfers that move, and a sender
 * that answers late (a starved CPU, a long slot queue) must not keep the node from asking anyone else. Several
 * progress reports long on a fast link; on a link so thin that a transfer reports less often, the downloads' own
 * caps bound the requests, as before the budget.
 */
export const BUDGET_QUIET_MS = 2000
/**
 * The scheduler's no-progress window is this fraction of the stall timeout, and its hard timeout this one: late
 * requests must move well before the stall timeout sends the blob to the origin.
 */
export const REQUEST_TIMEOUT_STALL_DIVISOR = 4
export const HARD_TIMEOUT_STALL_DIVISOR = 2
export const MIN_REQUEST_TIMEOUT_MS = 1000
export const MIN_HARD_TIMEOUT_MS = 2000
