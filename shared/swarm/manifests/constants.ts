/**
 * Multistream protocol id of manifest sharing: one request (a manifest digest) and its answer per stream. Its own id,
 * not a message of `/shoal/chunks/1.0.0`, so a node of an earlier release simply does not speak it: the dial fails
 * at protocol selection and the asker goes to the origin as before.
 */
export const MANIFEST_PROTOCOL = '/shoal/manifests/1.0.0'

/** Cap on the JSON control frame (the request, the answer's header); the manifest bytes follow in a data frame. */
export const MAX_MANIFEST_CONTROL_FRAME_BYTES = 4 * 1024

/** A media type as a manifest's Content-Type names it (RFC 6838 allows 127 + 1 + 127 characters, plus parameters). */
export const MAX_MEDIA_TYPE_CHARS = 255

/** Server: a request not fully answered by then has its stream reset. A manifest is one small cache read. */
export const DEFAULT_SERVER_REQUEST_TIMEOUT_MS = 5_000

/**
 * Asker: one peer's answer must arrive in full within this time. Short: the origin is the fallback, so a slow
 * peer must not cost the client more than about an origin round trip.
 */
export const DEFAULT_PEER_TIMEOUT_MS = 1_000

/** Asker: a seeder's answer, which may first take its own GET of the manifest at the origin. */
export const DEFAULT_SEEDER_TIMEOUT_MS = 2_000

/** Asker: every peer asked for one manifest, together, within this time; then the origin. */
export const DEFAULT_OVERALL_DEADLINE_MS = 3_000

/** Asker: connected peers (not seeders) asked for one manifest after the seeders, at most. */
export const DEFAULT_MAX_PEERS_ASKED = 3

/** Open inbound streams of this protocol per connection: a node asks one peer for a few manifests at once at most. */
export const MAX_INBOUND_STREAMS_PER_PEER = 8
