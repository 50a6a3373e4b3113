import type { PeerId } from '@libp2p/interface'
import type { TokenBucket } from '../../../rate/token-bucket.ts'
import type { BulkTickets } from '../../bulk/tickets.ts'
import type { FrameStream } from '../framing.ts'
import type { ChunkSource, OnServed, RequestContext, UploadSlots } from '../../serve/index.ts'
import type { ChunkServerInit } from '../index.ts'
import type { Request } from '../messages.ts'

/** Everything a handler needs for one inbound request; `signal` carries the request's own deadline. */
export interface HandlerContext extends RequestContext {
  readonly source: ChunkSource
  readonly frames: FrameStream
  readonly uploads: UploadSlots
  readonly bucket?: TokenBucket
  readonly onServed?: OnServed
  readonly prefetch?: ChunkServerInit['prefetch']
  readonly peer: PeerId
  /** This node's edge site, told in `have` answers. */
  readonly ownSite?: string
  /** Set when this node serves the bulk data path. */
  readonly bulk?: BulkIssuer
}

/** What the `bulk` handler needs: the port the HTTPS server listens on (once it does) and the ticket book. */
export interface BulkIssuer {
  readonly port: number | undefined
  readonly tickets: BulkTickets
}

export type Handler<R extends Request> = (req: R, ctx: HandlerContext) => Promise<void>
