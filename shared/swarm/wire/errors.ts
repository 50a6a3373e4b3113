/**
 * Errors of moving chunks between peers, over the libp2p chunk protocol and the bulk path alike. The downloader
 * tells them apart by `code`: a malformed answer is the peer's fault (penalise it), a timeout may only be a slow
 * link, a protocol error is a failed exchange. The codes are stable: peers and logs rely on them.
 */

/**
 * A frame that is not a well-formed message, or not an answer to the request that was sent: bad JSON, wrong
 * types, limits exceeded, a response of the wrong type, for another digest or chunk, or longer than announced.
 */
export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError'
  readonly code = 'CHUNK_PROTOCOL_INVALID_MESSAGE'
}

/** The exchange failed: the dial or the stream failed, or the stream ended before the response was complete. */
export class ProtocolError extends Error {
  override name = 'ProtocolError'
  readonly code: 'CHUNK_PROTOCOL_ERROR' | 'CHUNK_PROTOCOL_REMOTE_ERROR' = 'CHUNK_PROTOCOL_ERROR'
}

/** The peer answered `{ t: 'error' }` (a seeder could not start pulling a blob); the message is the peer's. */
export class RemoteError extends ProtocolError {
  override name = 'RemoteError'
  override readonly code = 'CHUNK_PROTOCOL_REMOTE_ERROR'
}

/** The peer did not answer in full within the request timeout. */
export class PeerTimeoutError extends Error {
  override name = 'PeerTimeoutError'
  readonly code = 'CHUNK_PROTOCOL_PEER_TIMEOUT'
}
