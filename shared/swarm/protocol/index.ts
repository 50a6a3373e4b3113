/**
 * `/shoal/chunks/1.0.0`: how agents and seeders move verified chunks of OCI blobs between each other.
 * One request per stream: open, write the request, read the response, close. See messages.ts for the wire.
 */
import type { Libp2p } from '@libp2p/interface'
import type { Logger } from '../../log/index.ts'
import type { Digest } from '../../oci/digest.ts'
import type { BulkClient } from '../bulk/client.ts'
import type { BulkCredentials } from '../bulk/credentials.ts'
import type { HostPort } from '../bulk/listen.ts'
import type { TokenBucket } from '../../rate/token-bucket.ts'
import type { ChunkSource, OnServed, RequestContext, UploadSlots } from '../serve/index.ts'

// What a node serves lives below both the libp2p stream and the bulk path (shared/swarm/serve).
export type { ChunkSource, OnServed, RequestContext, SourceHave } from '../serve/index.ts'

export interface ChunkServerComponents {
  /** The libp2p node (or anything that can register a protocol handler). */
  readonly registrar: Pick<Libp2p, 'handle' | 'unhandle'>
}

/** Limits by the peer's site (WanBudget in shared/swarm/wan-budget.ts). */
export interface PeerBudget {
  /** `peer` said it is in `site` (none: it named no site). */
  learn(peer: string, site: string | undefined): void
  uploadTo(peer: string): TokenBucket | undefined
  downloadFrom(peer: string): TokenBucket | undefined
}

export interface ChunkServerInit {
  readonly source: ChunkSource
  /**
   * Edge sites: the limit on bytes to each peer by its site (learned from its `have` requests), in place of
   * `uploadBucket` for the chunk protocol (shared/swarm/wan-budget.ts). The bulk path keeps `uploadBucket`.
   */
  readonly uploadBudget?: PeerBudget
  /** This node's edge site, told in every `have` answer (format 1.1); none: not told. */
  readonly site?: string
  /** Open inbound streams of this protocol per connection (default 64). */
  readonly maxInboundStreamsPerPeer?: number
  /** Chunk responses sent at once over all peers; more are answered `busy` (default 8). */
  readonly maxConcurrentUploads?: number
  /**
   * The upload slots to draw on, in place of a flat `maxConcurrentUploads` (edge sites: pools by the receiver's
   * site, shared/swarm/serve/site-slots.ts). The bulk path draws on the same.
   */
  readonly uploads?: UploadSlots
  /** Each request must be answered in full within this time or its stream is reset (default 30 s). */
  readonly requestTimeoutMs?: number
  /** Shared upload limit; chunk bytes take from it as they are written. */
  readonly uploadBucket?: TokenBucket
  /** Called after a chunk's bytes were handed to the transport. */
  readonly onServed?: OnServed
  /**
   * An agent: takes a seeder's request to pull a blob into its cache through the swarm. Resolves once the
   * prefetch is accepted (not when it is done); throws to refuse. Absent: `prefetch` is answered with an error.
   */
  readonly prefetch?: (
    digest: Digest,
    registry: string,
    name: string,
    ctx: RequestContext,
    opts: { readonly hold: boolean },
  ) => Promise<void>
  readonly log?: Pick<Logger, 'debug' | 'warn'>
  /**
   * Also serve chunk bytes over the bulk (HTTPS) path, listening on `listen`, to peers holding a ticket from a
   * `bulk` request (shared/swarm/bulk). The same upload slots, bucket, timeout and onServed apply.
   */
  readonly bulk?: { readonly credentials: BulkCredentials; readonly listen: HostPort; readonly ticketTtlMs?: number }
}

export interface ChunkClientInit {
  /** The libp2p node to dial from. */
  readonly node: Pick<Libp2p, 'dial' | 'dialProtocol' | 'getConnections'>
  /** Fetch chunk bytes over the bulk path from peers that offer it; the libp2p stream stays the fallback. */
  readonly bulk?: BulkClient
  /** Each response must arrive in full within this time (a long poll adds its wait) (default 30 s). */
  readonly requestTimeoutMs?: number
  /** Shared download limit; data-frame bytes take from it as they are read. */
  readonly downloadBucket?: TokenBucket
  /**
   * Edge sites: the limit on bytes from each peer by its site (learned from its `have` answers), in place of
   * `downloadBucket` (shared/swarm/wan-budget.ts), on the chunk protocol and the bulk path alike.
   */
  readonly downloadBudget?: PeerBudget
  /** Concurrent outbound streams of this protocol per connection (default 64). */
  readonly maxOutboundStreamsPerPeer?: number
}

export { ChunkClient, type ChunkResult, type ChunkTransfers, type HaveResult, type PeerTarget } from './client.ts'
export {
  CHUNK_PROTOCOL,
  DEFAULT_CLIENT_REQUEST_TIMEOUT_MS,
  DEFAULT_AGENT_UPLOAD_SLOTS,
  DEFAULT_MAX_CONCURRENT_UPLOADS,
  DEFAULT_SERVER_REQUEST_TIMEOUT_MS,
  MAX_CONTROL_FRAME_BYTES,
  MAX_HAVE_WAIT_MS,
} from './constants.ts'
export { InvalidMessageError, PeerTimeoutError, ProtocolError, RemoteError } from '../wire/errors.ts'
export {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  MAX_HAVE_PEERS,
  type Request,
  type Response,
} from './messages.ts'
export { ChunkServer } from './server.ts'
