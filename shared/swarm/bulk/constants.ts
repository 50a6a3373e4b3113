/** A bulk ticket lives this long: long enough to fetch a blob's chunks on one ticket, short enough to leak little. */
export const DEFAULT_TICKET_TTL_MS = 60_000
/** Tickets held at once by a server; the oldest goes first when a new one would exceed it. */
export const DEFAULT_MAX_TICKETS = 10_000
/** Random bytes in a token (base64url: 43 characters). */
export const TOKEN_BYTES = 32
export const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/
/** A ticket answer may not claim to live longer than this, whatever the server says. */
export const MAX_TICKET_TTL_MS = 10 * 60_000
/** The client stops using a ticket this long before the server forgets it, so a request never races the expiry. */
export const TICKET_EXPIRY_MARGIN_MS = 5_000

/** A ticket is one small control message: a peer that takes longer to hand one out is left to the stream. */
export const TICKET_TIMEOUT_MS = 5_000
/** After a bulk failure that is not the peer's fault (old peer, port closed, wrong identity), use streams this long. */
export const BULK_RETRY_AFTER_MS = 30_000

/** HTTP/1.1 keep-alive connections per serving peer: one chunk request in flight on each. */
export const DEFAULT_CONNECTIONS_PER_PEER = 8
/** Serving peers with an open connection pool; the least recently used one is closed past this. */
export const MAX_PEER_POOLS = 256
/** Client side: an idle keep-alive connection is closed after this (less than the server's, so it never races). */
export const CLIENT_KEEP_ALIVE_MS = 30_000
export const SERVER_KEEP_ALIVE_MS = 60_000
/** TLS handshake and request headers must be in by then. */
export const HANDSHAKE_TIMEOUT_MS = 10_000
export const HEADERS_TIMEOUT_MS = 10_000
/**
 * Chunk buffers a bulk server keeps for reuse between responses (ChunkBuffers), and how long it keeps them once no
 * request takes one: eight 1 MiB chunks in flight reuse their buffers, an idle agent holds none.
 */
export const SEND_BUFFERS_BYTES = 8 * 1024 * 1024
export const SEND_BUFFERS_IDLE_MS = 10_000
/** The same for the chunk bodies an agent receives (8 requests in flight per serving peer). */
export const RECEIVE_BUFFERS_BYTES = 16 * 1024 * 1024
export const RECEIVE_BUFFERS_IDLE_MS = 10_000

/** Open TLS connections a bulk server accepts at once. */
export const MAX_BULK_CONNECTIONS = 512

/** The attestation of a cold blob's chunk travels in this response header, canonical base64. */
export const ATTESTATION_HEADER = 'x-shoal-attestation'
/** `/chunks/<digest>/<index>` */
export const CHUNK_PATH_RE = /^\/chunks\/([a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)\/(0|[1-9][0-9]{0,8})$/
