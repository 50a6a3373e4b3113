import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { isMarkedAsUntransferable } from 'node:worker_threads'
import type { PeerId } from '@libp2p/interface'
import type { buildConnector, Dispatcher, Pool } from 'undici'
import { type ChunkAttestation, decodeChunkAttestation } from '../../chunks/attestation.ts'
import type { Digest } from '../../oci/digest.ts'
import type { TokenBucket } from '../../rate/token-bucket.ts'
import type { ChunkBuffers } from '../serve/chunk-buffers.ts'
import { loadUndici, undiciIfLoaded } from '../../process/undici.ts'
import { InvalidMessageError } from '../wire/errors.ts'
import {
  ATTESTATION_HEADER,
  CLIENT_KEEP_ALIVE_MS,
  DEFAULT_CONNECTIONS_PER_PEER,
  HANDSHAKE_TIMEOUT_MS,
  MAX_PEER_POOLS,
} from './constants.ts'
import { type BulkCredentials, certificatePeer } from './credentials.ts'
import { BulkIdentityError, BulkTicketRejectedError, BulkUnavailableError } from './errors.ts'

/** Where and as whom to fetch: the serving peer's identity, its bulk address, and the ticket it issued. */
export interface BulkTarget {
  readonly peer: PeerId
  readonly host: string
  readonly port: number
  readonly token: string
}

export interface BulkClientInit {
  /** This node's certificate, presented as the TLS client certificate (the ticket is bound to its peer id). */
  readonly credentials: BulkCredentials
  /** Keep-alive connections per serving peer, one request in flight on each (default 8). */
  readonly connectionsPerPeer?: number
  /** Where chunk bodies are received into; the consumer gives each back once it no longer needs the bytes. */
  readonly buffers?: ChunkBuffers
}

/** A refusal (404, 503, 401, 403) has no body; a longer one than this closes the connection. */
const MAX_REFUSAL_BODY_BYTES = 64 * 1024

/** Bytes exactly as received: the caller verifies them against a trusted map or attestation. */
export type BulkChunk = { readonly bytes: Uint8Array; readonly attestation?: ChunkAttestation } | 'none' | 'busy'

/**
 * The fetching side of the bulk data path: a keep-alive HTTPS pool per serving peer whose connections are only
 * used once the server's certificate proved the peer id the ticket came from over libp2p (no CA, no fingerprint:
 * the libp2p TLS certificate is signed by the identity key). Integrity is not its job: every chunk is hashed
 * against its proof by the caller.
 */
export class BulkClient {
  readonly #credentials: BulkCredentials
  readonly #connections: number
  readonly #pools = new Map<string, Pool>()
  readonly #buffers: ChunkBuffers | undefined

  constructor(init: BulkClientInit) {
    this.#credentials = init.credentials
    this.#connections = init.connectionsPerPeer ?? DEFAULT_CONNECTIONS_PER_PEER
    this.#buffers = init.buffers
  }

  /**
   * One chunk, `'none'` when the peer does not hold it, `'busy'` when it is at its upload limit. A chunk longer
   * than `maxBytes` is refused before it is read (InvalidMessageError); a refused ticket is a
   * BulkTicketRejectedError; a server that is not `target.peer` fails the connection with BulkIdentityError.
   */
  getChunk(
    target: BulkTarget,
    digest: Digest,
    index: number,
    opts: { maxBytes: number; signal: AbortSignal; bucket?: TokenBucket; onProgress?: (received: number) => void },
  ): Promise<BulkChunk> {
    const { signal } = opts
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    // undici is loaded at the first chunk fetched (shared/process/undici.ts), then every call goes straight on.
    const undici = undiciIfLoaded()
    if (undici === undefined) return loadUndici().then(() => this.getChunk(target, digest, index, opts))
    // undici's handler callbacks straight into the chunk's buffer: no body stream, no promise per TLS record.
    return new Promise<BulkChunk>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined
      let settled = false
      let status = 0
      let bytes: Uint8Array | undefined
      let attestation: ChunkAttestation | undefined
      let at = 0
      let ignored = 0
      const settle = (err: unknown, value?: BulkChunk): void => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        if (err === undefined) resolve(value!)
        else reject(err instanceof Error ? err : new Error(String(err)))
      }
      /** Fails the request: a response cut short closes its connection (never reused half read). */
      const fail = (err: unknown): void => {
        settle(err)
        if (controller !== undefined && !controller.aborted) controller.abort(err as Error)
      }
      const onAbort = (): void => fail(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (c) => {
          controller = c
          if (settled) c.abort(signal.reason as Error)
        },
        onResponseStart: (c, statusCode, headers) => {
          status = statusCode
          if (settled || status !== 200) return
          try {
            const length = Number(headers['content-length'])
            if (!Number.isSafeInteger(length) || length < 1 || length > opts.maxBytes) {
              throw new InvalidMessageError(
                `bulk chunk of ${String(headers['content-length'])} bytes, limit ${opts.maxBytes}`,
              )
            }
            attestation = decodeAttestationHeader(headers[ATTESTATION_HEADER])
            // Not zero-filled: it is returned only once every byte of it was received.
            bytes = this.#buffers?.take(length) ?? Buffer.allocUnsafe(length)
            const bucket = opts.bucket
            if (bucket !== undefined && !bucket.unlimited) {
              // Taken before the body is read, so the wait overlaps the transfer (as on the libp2p path).
              c.pause()
              bucket.take(length, { signal }).then(
                () => {
                  if (!settled) c.resume()
                },
                (err: unknown) => fail(err),
              )
            }
          } catch (err) {
            fail(err)
          }
        },
        onResponseData: (_c, part) => {
          if (settled) return
          if (bytes === undefined) {
            // A refusal carries no body; a server that sends one anyway gets its connection closed.
            ignored += part.byteLength
            if (ignored > MAX_REFUSAL_BODY_BYTES) fail(new BulkUnavailableError('bulk refusal with a body'))
            return
          }
          if (at + part.byteLength > bytes.byteLength) {
            fail(new InvalidMessageError(`bulk chunk longer than its ${bytes.byteLength} bytes`))
            return
          }
          bytes.set(part, at)
          at += part.byteLength
          release(part)
          opts.onProgress?.(at)
        },
        onResponseEnd: () => {
          if (settled) return
          if (status === 200) {
            if (bytes === undefined || at !== bytes.byteLength) {
              settle(new BulkUnavailableError(`bulk chunk ended after ${at} of ${bytes?.byteLength ?? 0} bytes`))
            } else {
              settle(undefined, attestation === undefined ? { bytes } : { bytes, attestation })
            }
          } else if (status === 404) settle(undefined, 'none')
          else if (status === 503) settle(undefined, 'busy')
          else if (status === 401 || status === 403) {
            settle(new BulkTicketRejectedError(`bulk ticket refused by ${target.peer.toString()} (${status})`))
          } else settle(new BulkUnavailableError(`bulk GET answered ${status} by ${target.peer.toString()}`))
        },
        onResponseError: (_c, err) => settle(signal.aborted ? signal.reason : err),
      }
      try {
        this.#pool(target).dispatch(
          {
            method: 'GET',
            path: `/chunks/${digest}/${index}`,
            headers: { authorization: `Bearer ${target.token}` },
          },
          handler,
        )
      } catch (err) {
        settle(err)
      }
    })
  }

  async stop(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.allSettled(pools.map((p) => p.destroy()))
  }

  /** Drops the connections to a peer (after it failed), so the next attempt starts from a fresh handshake. */
  forget(target: Pick<BulkTarget, 'peer' | 'host' | 'port'>): void {
    const key = poolKey(target)
    const pool = this.#pools.get(key)
    this.#pools.delete(key)
    void pool?.destroy().catch(() => {})
  }

  #pool(target: BulkTarget): Pool {
    const key = poolKey(target)
    let pool = this.#pools.get(key)
    if (pool !== undefined) {
      // Most recently used last, so the first is the one to close when there are too many.
      this.#pools.delete(key)
      this.#pools.set(key, pool)
      return pool
    }
    const host = target.host.includes(':') ? `[${target.host}]` : target.host
    pool = new (undiciIfLoaded()!.Pool)(`https://${host}:${target.port}`, {
      connections: this.#connections,
      keepAliveTimeout: CLIENT_KEEP_ALIVE_MS,
      connect: this.#connector(target),
    })
    this.#pools.set(key, pool)
    while (this.#pools.size > MAX_PEER_POOLS) {
      const [oldKey, old] = this.#pools.entries().next().value!
      this.#pools.delete(oldKey)
      void old.close().catch(() => {})
    }
    return pool
  }

  /** A TLS connection handed to undici only after the server proved `target.peer`; ours proves our peer id. */
  #connector(target: BulkTarget): buildConnector.connector {
    const { cert, key } = this.#credentials
    return (_options, callback) => {
      let done = false
      const finish = (...args: [null, TLSSocket] | [Error, null]): void => {
        if (done) return
        done = true
        socket.setTimeout(0)
        callback(...args)
      }
      const socket = tlsConnect({
        host: target.host,
        port: target.port,
        cert,
        key,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
        ALPNProtocols: ['http/1.1'],
      })
      socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => {
        socket.destroy()
        finish(new BulkUnavailableError(`bulk handshake with ${target.host}:${target.port} timed out`), null)
      })
      socket.once('error', (err) => finish(err, null))
      socket.once('secureConnect', () => {
        const raw = socket.getPeerCertificate().raw as Buffer | undefined
        if (raw === undefined) {
          socket.destroy()
          finish(new BulkIdentityError('bulk server presented no certificate'), null)
          return
        }
        certificatePeer(raw, target.peer).then(
          () => finish(null, socket),
          (err: unknown) => {
            socket.destroy()
            const why = err instanceof Error ? err.message : String(err)
            finish(new BulkIdentityError(`bulk server is not ${target.peer.toString()}: ${why}`, { cause: err }), null)
          },
        )
      })
    }
  }
}

/** Socket reads whose bytes were copied out, freed once the parser is done with the read they came in. */
let released: ArrayBuffer[] = []

/**
 * Frees the socket read a body piece is the tail of, once its bytes are in the chunk's buffer. Each TLS read is
 * a fresh buffer; left to the collector, 256 MiB of them per 256 MiB received count as external memory, which V8
 * answers with full collections (its helper threads spent ~0.6 s per second of the main thread's on a receiving
 * agent). Only a read that ends with the piece (nothing past it for the parser still to read) and is not Node's
 * shared pool; after the parser's current read (a microtask: the parser runs synchronously through the read).
 */
function release(part: Uint8Array): void {
  const buffer = part.buffer
  if (
    !(buffer instanceof ArrayBuffer) ||
    buffer.detached ||
    part.byteOffset + part.byteLength !== buffer.byteLength ||
    isMarkedAsUntransferable(buffer)
  )
    return
  if (released.length === 0) queueMicrotask(freeReleased)
  released.push(buffer)
}

function freeReleased(): void {
  const list = released
  released = []
  for (const buffer of list) if (!buffer.detached) buffer.transfer(0)
}

function poolKey(t: Pick<BulkTarget, 'peer' | 'host' | 'port'>): string {
  return `${t.peer.toString()}@${t.host}:${t.port}`
}

function decodeAttestationHeader(value: string | string[] | undefined): ChunkAttestation | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new InvalidMessageError('repeated attestation header')
  const bytes = Buffer.from(value, 'base64')
  if (bytes.toString('base64') !== value) throw new InvalidMessageError('attestation header is not canonical base64')
  try {
    return decodeChunkAttestation(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (err) {
    throw new InvalidMessageError('invalid chunk attestation', { cause: err })
  }
}
