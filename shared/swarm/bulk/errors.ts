/**
 * Errors of the bulk data path. Every one of them makes the client fall back to the libp2p stream: the bulk path
 * is an optimisation, never the only way to a chunk.
 */

/** The server's certificate is not bound to the peer id the ticket came from (or is not a libp2p certificate). */
export class BulkIdentityError extends Error {
  override name = 'BulkIdentityError'
  readonly code = 'BULK_IDENTITY_MISMATCH'
}

/** The server refused the ticket (expired, unknown, issued to another peer or for another blob). */
export class BulkTicketRejectedError extends Error {
  override name = 'BulkTicketRejectedError'
  readonly code = 'BULK_TICKET_REJECTED'
}

/** The bulk port could not be reached or answered something no bulk server says. */
export class BulkUnavailableError extends Error {
  override name = 'BulkUnavailableError'
  readonly code = 'BULK_UNAVAILABLE'
}
