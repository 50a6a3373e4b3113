import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { finished } from 'node:stream/promises'
import type { TLSSocket } from 'node:tls'
import type { PeerId } from '@libp2p/interface'
import { encodeChunkAttestation } from '../../chunks/attestation.ts'
import type { Logger } from '../../log/index.ts'
import { type Digest, isDigest } from '../../oci/digest.ts'
import type { TokenBucket } from '../../rate/token-bucket.ts'
import { ChunkBuffers, type ChunkSource, type OnServed, takeChunk, type UploadSlots } from '../serve/index.ts'
import { DATA_SLICE_BYTES } from '../wire/constants.ts'
import { type Deadline, deadline } from '../wire/deadline.ts'
import { InvalidMessageError, PeerTimeoutError, ProtocolError } from '../wire/errors.ts'
import {
  ATTESTATION_HEADER,
  CHUNK_PATH_RE,
  HANDSHAKE_TIMEOUT_MS,
  HEADERS_TIMEOUT_MS,
  MAX_BULK_CONNECTIONS,
  SERVER_KEEP_ALIVE_MS,
  SEND_BUFFERS_BYTES,
  SEND_BUFFERS_IDLE_MS,
  TOKEN_RE,
} from './constants.ts'
import { type BulkCredentials, certificatePeer } from './credentials.ts'
import type { BulkTickets } from './tickets.ts'

type Log = Pick<Logger, 'debug' | 'warn'>

export interface BulkServerInit {
  readonly credentials: BulkCredentials
  readonly tickets: BulkTickets
  readonly source: ChunkSource
  /** The chunk server's slots: one cap on concurrent uploads over both paths. */
  readonly uploads: UploadSlots
  readonly bucket?: TokenBucket
  readonly onServed?: OnServed
  /** A response not sent in full by then is cut off (the libp2p path's request timeout). */
  readonly requestTimeoutMs: number
  readonly log: Log
}

/**
 * The serving side of the bulk data path: `GET /chunks/<digest>/<index>` over HTTPS (TLS 1.3, keep-alive), with
 * `Authorization: Bearer <ticket token>`. Both ends present their libp2p TLS certificate: the client's proves the
 * peer id the ticket must have been issued to. The same upload slots, bucket, timeout and accounting as the
 * libp2p stream apply; the answer is the chunk's bytes (200), or 404 (not held), 503 (busy), 401/403 (who are
 * you / not your ticket), 400 (malformed).
 */
export class BulkServer {
  readonly #i: BulkServerInit
  readonly #server: Server
  readonly #peers = new WeakMap<TLSSocket, Promise<PeerId | undefined>>()
  #stopping = new AbortController()
  #port: number | undefined

  /** What chunks are read into for sending: each is back here once its response has gone (or was cut). */
  readonly #buffers = new ChunkBuffers({ maxBytes: SEND_BUFFERS_BYTES, idleMs: SEND_BUFFERS_IDLE_MS })

  constructor(init: BulkServerInit) {
    this.#i = init
    this.#server = createServer(
      {
        cert: init.credentials.cert,
        key: init.credentials.key,
        // Self-signed both ways: the libp2p certificate check below is the authentication, not a CA.
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      },
      (req, res) => void this.#onRequest(req, res),
    )
    this.#server.keepAliveTimeout = SERVER_KEEP_ALIVE_MS
    this.#server.headersTimeout = HEADERS_TIMEOUT_MS
    this.#server.requestTimeout = HEADERS_TIMEOUT_MS
    this.#server.maxConnections = MAX_BULK_CONNECTIONS
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      const raw = socket.getPeerCertificate().raw as Buffer | undefined
      const peer = raw === undefined ? Promise.resolve(undefined) : certificatePeer(raw).catch(() => undefined)
      this.#peers.set(socket, peer)
    })
    // A client that fails its handshake is its own problem; without a listener the error would be thrown.
    this.#server.on('tlsClientError', (err) => this.#i.log.debug({ err }, 'bulk tls handshake failed'))
    // Listening errors reject listen(); one after that (say, out of file descriptors) must not end the process.
    this.#server.on('error', (err) => {
      if (this.#server.listening) this.#i.log.warn({ err }, 'bulk server error')
    })
  }

  /** The port listened on, once listening. */
  get port(): number | undefined {
    return this.#port
  }

  async listen(host: string, port: number): Promise<number> {
    this.#stopping = new AbortController()
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    this.#port = (this.#server.address() as AddressInfo).port
    return this.#port
  }

  async stop(): Promise<void> {
    this.#port = undefined
    this.#stopping.abort(new ProtocolError('bulk server stopped'))
    if (!this.#server.listening) return
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeAllConnections()
    await closed
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reject = (status: number): void => {
      res.writeHead(status, { 'content-length': '0' })
      res.end()
    }
    if (req.method !== 'GET') return reject(405)
    const m = CHUNK_PATH_RE.exec(req.url ?? '')
    if (m === null || !isDigest(m[1]!)) return reject(400)
    const digest: Digest = m[1]
    const index = Number(m[2])
    const auth = req.headers.authorization
    const token = auth?.startsWith('Bearer ') === true ? auth.slice('Bearer '.length) : undefined
    if (token === undefined || !TOKEN_RE.test(token)) return reject(401)
    const peer = await this.#peers.get(req.socket as TLSSocket)
    if (peer === undefined) return reject(401)
    const check = this.#i.tickets.check(token, peer.toString(), digest)
    if (check !== 'ok') {
      this.#i.log.debug({ peer: peer.toString(), digest, reason: check }, 'bulk ticket refused')
      return reject(403)
    }
    const closed = new AbortController()
    // A response also closes when it completes: only a close before that is the peer going away.
    res.once('close', () => {
      if (!res.writableFinished) closed.abort(new ProtocolError('bulk connection closed'))
    })
    const timeoutMs = this.#i.requestTimeoutMs
    const request: Deadline = deadline(
      timeoutMs,
      () => new PeerTimeoutError(`bulk request not answered within ${timeoutMs} ms`),
      [this.#stopping.signal, closed.signal],
    )
    const { signal } = request
    // Whatever the source does with the signal, the response ends the moment the deadline passes.
    const onAbort = (): void => {
      if (!res.writableFinished) res.destroy()
    }
    signal.addEventListener('abort', onAbort, { once: true })
    let release: (() => void) | undefined
    try {
      const chunk = await takeChunk(this.#i.source, this.#i.uploads, digest, index, { peer, signal }, this.#buffers)
      if (chunk.t !== 'chunk') return reject(chunk.t === 'busy' ? 503 : 404)
      release = chunk.release
      const { bytes, attestation } = chunk
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(bytes.byteLength),
        ...(attestation === undefined
          ? {}
          : { [ATTESTATION_HEADER]: Buffer.from(encodeChunkAttestation(attestation)).toString('base64') }),
      })
      await writeBody(res, bytes, this.#i.bucket, signal)
      this.#i.onServed?.(peer, bytes.byteLength, { digest, index })
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : err
      if (reason instanceof InvalidMessageError) {
        if (!res.headersSent) return reject(400)
      } else if (reason instanceof PeerTimeoutError || reason instanceof ProtocolError) {
        this.#i.log.debug({ peer: peer.toString(), err: reason }, 'bulk request aborted')
      } else {
        this.#i.log.warn({ peer: peer.toString(), err: reason }, 'bulk request failed')
        if (!res.headersSent) return reject(500)
      }
      res.destroy()
    } finally {
      release?.()
      signal.removeEventListener('abort', onAbort)
      request.dispose()
    }
  }
}

/** The body in slices that each take their bytes from the bucket first (as on the libp2p path), with back-pressure. */
async function writeBody(
  res: ServerResponse,
  bytes: Uint8Array,
  bucket: TokenBucket | undefined,
  signal: AbortSignal,
): Promise<void> {
  if (bucket === undefined || bucket.unlimited) {
    res.end(bytes)
  } else {
    for (let offset = 0; offset < bytes.byteLength; offset += DATA_SLICE_BYTES) {
      const piece = bytes.subarray(offset, Math.min(offset + DATA_SLICE_BYTES, bytes.byteLength))
      await bucket.take(piece.byteLength, { signal })
      signal.throwIfAborted()
      if (!res.write(piece)) await once(res, 'drain', { signal })
    }
    res.end()
  }
  // No signal here: the response closes as it completes, and the deadline destroys it anyway when it passes.
  await finished(res)
}
