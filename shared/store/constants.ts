/** Size of each piece a blob stream reads from disk and pushes; also the streams' highWaterMark. */
export const READ_PIECE_BYTES = 256 * 1024

/**
 * Buffers a stream piped straight to a socket reads into in turn: one filling from the file while the others wait
 * in the socket (measured on loopback: 4 × 256 KiB sends at the Node floor's rate with a fraction of its CPU).
 */
export const SEND_PIECES = 4

/**
 * Appended bytes that may wait for the whole-blob hash behind a batch a client's socket still holds (see AppendTap)
 * before the next append waits too: the same bound as a hashing thread's backlog.
 */
export const FEED_QUEUED_BYTES = 32 * 1024 * 1024

/**
 * How long the whole-blob hash waits for a client's socket to take a batch a tap sent it before it hashes a copy of
 * the batch instead (the socket still holds the pieces, so their memory cannot move to the hashing thread). On
 * loopback a socket takes a 1 MiB batch within the same turn of the event loop nearly always.
 */
export const TAP_HOLD_MS = 20

/** Size of each read while the whole-blob hasher catches up with bytes that landed out of order. */
export const HASH_READ_BYTES = 1024 * 1024

/**
 * Complete blobs whose file handle `readRange` keeps open, and for how long after its last read: a peer fetching a
 * blob's chunks one after another reads them on one handle instead of opening and closing the file per chunk.
 */
export const RANGE_HANDLES = 16
export const RANGE_HANDLE_IDLE_MS = 2_000

/** lastAccess updates are kept in memory and written to the index at most this often. */
export const ACCESS_FLUSH_MS = 5_000

/** Bumped when the on-disk layout or index values change incompatibly. */
export const STORE_FORMAT_VERSION = 1

/** Digest algorithms that get a directory under `blobs/`. */
export const BLOB_ALGORITHMS = ['sha256', 'sha512'] as const

/** Blobs may be private layers: only the agent's user reads them. */
export const FILE_MODE = 0o600
export const DIR_MODE = 0o700

/**
 * A partial's progress (bitfield, prefix) is synced and recorded at most this often while it downloads, and at
 * close. Syncing every chunk would turn the page cache into write-through (measured: 64 KiB appends 190 → 620
 * MiB/s without); a crash loses at most about this much progress.
 */
export const CHECKPOINT_INTERVAL_MS = 1_000

/**
 * Without a sync (the record names the boot it was written in, see PartialMeta.bootId), progress is still recorded at
 * most this often: one index write per chunk (1 MiB) cost the origin pull ~5 % of the agent's main thread, and a
 * process that dies loses at most this much progress (the bytes past the record are fetched again).
 */
export const CHECKPOINT_UNSYNCED_INTERVAL_MS = 100
