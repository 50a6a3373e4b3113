/**
 * A worker with no blob to hash is stopped after this long idle, so an idle agent holds no thread (each costs a few
 * MiB of RSS); a pull that starts within it reuses the thread (starting one costs ~20 ms).
 */
export const HASH_WORKER_IDLE_MS = 10_000

/**
 * Threads a pool starts at most when none is given: one per core beyond the main thread's, capped so a many-core
 * node does not start threads it cannot feed (one SHA-256 thread hashes ~1.3 GB/s here, more than one origin pull
 * sends).
 */
export const HASH_WORKERS_MAX = 4

/**
 * The hashing thread's heap: a young generation this small is collected often, and each collection frees the moved
 * pieces that died since (their memory is outside the heap, but held until a collection): 256 MiB pulls peaked
 * ~30 MiB lower in RSS than with V8's default (bench/datapath). The old generation only holds the thread's code.
 */
export const HASH_WORKER_YOUNG_MB = 4
export const HASH_WORKER_OLD_MB = 64

/**
 * Bytes a hashing thread may be behind its callers before they wait: bounds the memory of pieces queued for it when
 * the machine starves it of CPU (it hashes ~1.3 GB/s, faster than a pull brings bytes, when it gets a core).
 */
export const HASH_BACKLOG_BYTES = 32 * 1024 * 1024
