/** Multistream protocol id of Shoal's chunk exchange: one request and its response per stream. */
export const CHUNK_PROTOCOL = '/shoal/chunks/1.0.0'

/** Cap on a JSON control frame (requests and response headers); chunk and map bytes travel in data frames. */
export const MAX_CONTROL_FRAME_BYTES = 64 * 1024

/** A varint length prefix of a frame up to 2^53 is at most 8 bytes; more is garbage. */
export const MAX_LENGTH_PREFIX_BYTES = 8

/** A long-polled `have` is held at most this long, whatever the client asks for. */
export const MAX_HAVE_WAIT_MS = 10_000

/** Server: a request that has not been answered (including its data frame) by then is reset. */
export const DEFAULT_SERVER_REQUEST_TIMEOUT_MS = 30_000
/** Client: a response not fully received by then fails with PeerTimeoutError (a long poll adds its wait). */
export const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS = 30_000

/**
 * Chunk responses being sent at once; more get `busy`. Eight 4 MiB chunks in flight keep a 1 Gb/s link full at
 * loopback-like latencies while bounding the memory a server holds for uploads (8 × chunk size).
 */
export const DEFAULT_MAX_CONCURRENT_UPLOADS = 8

/**
 * Chunk uploads an agent serves at once (`--upload-slots`); the seeder serves DEFAULT_MAX_CONCURRENT_UPLOADS. Few,
 * so each chunk leaves fast and can be relayed on: the fleet simulator found more slots help when the seeder's
 * uplink is several times a node's and hurt when it is not (bench/sim/README.md).
 */
export const DEFAULT_AGENT_UPLOAD_SLOTS = 3

/**
 * Open inbound streams per connection for this protocol: a downloader pipelines a few chunks per peer and holds
 * one long-polled `have` per blob, so libp2p's default of 32 is tight for a peer fetching several layers at once.
 */
export const DEFAULT_MAX_INBOUND_STREAMS_PER_PEER = 64
export const DEFAULT_MAX_OUTBOUND_STREAMS_PER_PEER = 64

/** A remote error message is cut to this length before it is sent or surfaced. */
export const MAX_ERROR_MESSAGE_CHARS = 512

/** Registry host[:port] as sent in `fetch` (DNS names are at most 253 characters, plus a port). */
export const MAX_REGISTRY_CHARS = 261

/** A chunk being received reports progress every this many bytes (reads are sliced only when progress is asked). */
export const PROGRESS_SLICE_BYTES = 256 * 1024
