import type { Connection, Startable, Stream } from '@libp2p/interface'
import type { TokenBucket } from '../../rate/token-bucket.ts'
import { BulkServer } from '../bulk/server.ts'
import { BulkTickets } from '../bulk/tickets.ts'
import {
  CHUNK_PROTOCOL,
  DEFAULT_MAX_CONCURRENT_UPLOADS,
  DEFAULT_MAX_INBOUND_STREAMS_PER_PEER,
  DEFAULT_SERVER_REQUEST_TIMEOUT_MS,
  MAX_CONTROL_FRAME_BYTES,
  MAX_HAVE_WAIT_MS,
  MAX_LENGTH_PREFIX_BYTES,
} from './constants.ts'
import { type ChunkSource, UploadSlots } from '../serve/index.ts'
import { type Deadline, deadline } from '../wire/deadline.ts'
import { InvalidMessageError, PeerTimeoutError, ProtocolError } from '../wire/errors.ts'
import { FrameStream } from './framing.ts'
import { dispatch } from './handlers/index.ts'
import type { ChunkServerComponents, ChunkServerInit } from './index.ts'
import { decodeRequest, type Request } from './messages.ts'

type Log = NonNullable<ChunkServerInit['log']>

const silent: Log = { debug: () => {}, warn: () => {} }

/**
 * Serves `/shoal/chunks/1.0.0` from a ChunkSource. Each inbound stream carries one request; it gets its own
 * deadline, and anything malformed resets that stream only (InvalidMessageError, logged at debug).
 */
export class ChunkServer implements Startable {
  readonly #registrar: ChunkServerComponents['registrar']
  readonly #source: ChunkSource
  readonly #site: string | undefined
  readonly #budget: ChunkServerInit['uploadBudget']
  readonly #maxInboundStreams: number
  readonly #timeoutMs: number
  readonly #bucket: TokenBucket | undefined
  readonly #onServed: ChunkServerInit['onServed']
  readonly #prefetch: ChunkServerInit['prefetch']
  readonly #log: Log
  readonly #uploads: UploadSlots
  readonly #streams = new Set<Stream>()
  readonly #bulk:
    | { readonly server: BulkServer; readonly tickets: BulkTickets; readonly listen: { host: string; port: number } }
    | undefined
  #stopping = new AbortController()
  #started = false

  constructor(components: ChunkServerComponents, init: ChunkServerInit) {
    this.#registrar = components.registrar
    this.#source = init.source
    this.#site = init.site
    this.#budget = init.uploadBudget
    this.#maxInboundStreams = init.maxInboundStreamsPerPeer ?? DEFAULT_MAX_INBOUND_STREAMS_PER_PEER
    this.#timeoutMs = init.requestTimeoutMs ?? DEFAULT_SERVER_REQUEST_TIMEOUT_MS
    this.#bucket = init.uploadBucket
    this.#onServed = init.onServed
    this.#prefetch = init.prefetch
    this.#log = init.log ?? silent
    this.#uploads = init.uploads ?? new UploadSlots(init.maxConcurrentUploads ?? DEFAULT_MAX_CONCURRENT_UPLOADS)
    if (init.bulk !== undefined) {
      const tickets = new BulkTickets(init.bulk.ticketTtlMs === undefined ? {} : { ttlMs: init.bulk.ticketTtlMs })
      const server = new BulkServer({
        credentials: init.bulk.credentials,
        tickets,
        source: init.source,
        uploads: this.#uploads,
        ...(init.uploadBucket === undefined ? {} : { bucket: init.uploadBucket }),
        ...(init.onServed === undefined ? {} : { onServed: init.onServed }),
        requestTimeoutMs: this.#timeoutMs,
        log: this.#log,
      })
      this.#bulk = { server, tickets, listen: init.bulk.listen }
    }
  }

  /** The bulk (HTTPS) port, while serving one. */
  get bulkPort(): number | undefined {
    return this.#bulk?.server.port
  }

  isStarted(): boolean {
    return this.#started
  }

  /** Chunk responses being sent right now. */
  get activeUploads(): number {
    return this.#uploads.used
  }

  /** Chunk requests waiting for an upload slot (UploadSlots.wait). */
  get queuedUploads(): number {
    return this.#uploads.queued
  }

  /** The upload limit for this request: by the asker's site with a budget (a `have` tells it), else the node's. */
  #uploadBucketFor(peer: string, req: Request): TokenBucket | undefined {
    const budget = this.#budget
    if (budget === undefined) return this.#bucket
    if (req.t === 'have') budget.learn(peer, req.site)
    return budget.uploadTo(peer)
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#stopping = new AbortController()
    if (this.#bulk !== undefined) await this.#bulk.server.listen(this.#bulk.listen.host, this.#bulk.listen.port)
    try {
      await this.#registrar.handle(CHUNK_PROTOCOL, (stream, connection) => this.#onStream(stream, connection), {
        maxInboundStreams: this.#maxInboundStreams,
      })
    } catch (err) {
      await this.#bulk?.server.stop()
      throw err
    }
    this.#started = true
  }

  /** Stops taking requests and aborts the ones in progress. */
  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await this.#registrar.unhandle(CHUNK_PROTOCOL)
    this.#stopping.abort(new ProtocolError('chunk server stopped'))
    for (const s of this.#streams) s.abort(new ProtocolError('chunk server stopped'))
    await this.#bulk?.server.stop()
    this.#bulk?.tickets.clear()
  }

  async #onStream(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    this.#streams.add(stream)
    const closed = new AbortController()
    const onClose = (): void => closed.abort(new ProtocolError('stream closed by peer'))
    stream.addEventListener('close', onClose)
    // A source that ignores the signal must not keep the peer waiting: the stream is reset the moment the
    // request's deadline passes; the handler finds out when its next write fails.
    const onAbort = (evt: Event): void => {
      const reason: unknown = (evt.target as AbortSignal).reason
      stream.abort(reason instanceof Error ? reason : new ProtocolError(String(reason)))
    }
    let request: Deadline | undefined
    const arm = (timeoutMs: number): AbortSignal => {
      request?.signal.removeEventListener('abort', onAbort)
      request?.dispose()
      request = deadline(timeoutMs, () => new PeerTimeoutError(`request not answered within ${timeoutMs} ms`), [
        this.#stopping.signal,
        closed.signal,
      ])
      request.signal.addEventListener('abort', onAbort, { once: true })
      return request.signal
    }
    let signal = arm(this.#timeoutMs)
    try {
      // Only the request is expected from the peer: buffering more than one control frame is refused.
      const frames = new FrameStream(stream, { maxBufferBytes: MAX_CONTROL_FRAME_BYTES + MAX_LENGTH_PREFIX_BYTES })
      const req = decodeRequest(await frames.read(MAX_CONTROL_FRAME_BYTES, { signal }))
      // A long poll gets its wait on top of the usual time to answer, as the client allows for it too.
      if (req.t === 'have' && req.waitMs !== undefined && req.waitMs > 0) {
        signal = arm(this.#timeoutMs + Math.min(req.waitMs, MAX_HAVE_WAIT_MS))
      }
      await dispatch(req, {
        peer,
        signal,
        ...(req.t === 'have' && req.site !== undefined ? { site: req.site } : {}),
        ...(this.#site === undefined ? {} : { ownSite: this.#site }),
        source: this.#source,
        frames,
        uploads: this.#uploads,
        bucket: this.#uploadBucketFor(peer.toString(), req),
        onServed: this.#onServed,
        ...(this.#bulk === undefined ? {} : { bulk: { port: this.#bulk.server.port, tickets: this.#bulk.tickets } }),
        ...(this.#prefetch === undefined ? {} : { prefetch: this.#prefetch }),
      })
      // Our side is done: the stream closing from here on is the normal end, not a peer hanging up on us.
      stream.removeEventListener('close', onClose)
      await stream.close({ signal })
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : err
      if (reason instanceof InvalidMessageError) {
        this.#log.debug({ peer: peer.toString(), err: reason }, 'invalid chunk request')
      } else if (reason instanceof PeerTimeoutError || reason instanceof ProtocolError) {
        this.#log.debug({ peer: peer.toString(), err: reason }, 'chunk request aborted')
      } else if (isStreamError(reason)) {
        this.#log.debug({ peer: peer.toString(), err: reason }, 'chunk request stream failed')
      } else {
        this.#log.warn({ peer: peer.toString(), err: reason }, 'chunk request failed')
      }
      stream.abort(reason instanceof Error ? reason : new ProtocolError(String(reason)))
    } finally {
      request?.signal.removeEventListener('abort', onAbort)
      request?.dispose()
      stream.removeEventListener('close', onClose)
      this.#streams.delete(stream)
    }
  }
}

/** Errors of the transport itself (the peer went away, reset, or overflowed its buffer): routine, not a bug. */
function isStreamError(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return [
    'UnexpectedEOFError',
    'StreamResetError',
    'StreamClosedError',
    'StreamStateError',
    'StreamBufferError',
    'StreamAbortedError',
    'AbortError',
  ].includes(err.name)
}
