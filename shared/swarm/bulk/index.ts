/**
 * The bulk data path: chunk bytes over HTTPS between two peers, authorized over the libp2p chunk protocol.
 *
 * libp2p keeps what it is good at (identity, DHT, bitfields, attestations, maps); only chunk bytes move here,
 * because one HTTPS connection moves about twice what a libp2p TLS stream does (bench/transport). A requester
 * asks for a ticket over `/shoal/chunks/1.0.0` (`{ t: 'bulk', digest }`, so only a peer that passed the libp2p
 * handshake, and pnet when a swarm key is set, gets one), then fetches `GET /chunks/<digest>/<index>` from the
 * same IP at the ticket's port, with mutual TLS: both sides present their libp2p TLS certificate and each checks
 * the other's peer id. Chunks are verified against the trusted map or attestation as on the stream path, and any
 * bulk failure falls back to the stream.
 */
export { type BulkChunk, BulkClient, type BulkClientInit, type BulkTarget } from './client.ts'
export {
  BULK_RETRY_AFTER_MS,
  DEFAULT_CONNECTIONS_PER_PEER,
  DEFAULT_MAX_TICKETS,
  DEFAULT_TICKET_TTL_MS,
  MAX_TICKET_TTL_MS,
  RECEIVE_BUFFERS_BYTES,
  RECEIVE_BUFFERS_IDLE_MS,
} from './constants.ts'
export { type BulkCredentials, certificatePeer, createBulkCredentials } from './credentials.ts'
export { BulkIdentityError, BulkTicketRejectedError, BulkUnavailableError } from './errors.ts'
export { defaultBulkListen, type HostPort, ipOf } from './listen.ts'
export { BulkServer, type BulkServerInit } from './server.ts'
export { BulkTickets, type BulkTicketsInit, type IssuedTicket, type TicketCheck } from './tickets.ts'
