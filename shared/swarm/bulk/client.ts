import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import type { PeerId } from '@libp2p/interface'
import { type buildConnector, Pool } from 'undici'
import { type ChunkAttestation, decodeChunkAttestation } from '../../chunks/attestation.ts'
import type { Digest } from '../../oci/digest.ts'
import type { TokenBucket } from '../../rate/token-bucket.ts'
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
}

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

  constructor(init: BulkClientInit) {
    this.#credentials = init.credentials
    this.#connections = init.connectionsPerPeer ?? DEFAULT_CONNECTIONS_PER_PEER
  }

  /**
   * One chunk, `'none'` when the peer does not hold it, `'busy'` when it is at its upload limit. A chunk longer
   * than `maxBytes` is refused before it is read (InvalidMessageError); a refused ticket is a
   * BulkTicketRejectedError; a server that is not `target.peer` fails the connection with BulkIdentityError.
   */
  async getChunk(
    target: BulkTarget,
    digest: Digest,
    index: number,
    opts: { maxBytes: number; signal: AbortSignal; bucket?: TokenBucket; onProgress?: (received: number) => void },
  ): Promise<BulkChunk> {
    const { signal } = opts
    const res = await this.#pool(target).request({
      method: 'GET',
      path: `/chunks/${digest}/${index}`,
      headers: { authorization: `Bearer ${target.token}` },
      signal,
    })
    if (res.statusCode !== 200) {
      // Read to the end (a bulk server sends no body with these), so the connection stays reusable.
      await res.body.dump({ limit: 64 * 1024, signal })
      if (res.statusCode === 404) return 'none'
      if (res.statusCode === 503) return 'busy'
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new BulkTicketRejectedError(`bulk ticket refused by ${target.peer.toString()} (${res.statusCode})`)
      }
      throw new BulkUnavailableError(`bulk GET answered ${res.statusCode} by ${target.peer.toString()}`)
    }
    let complete = false
    try {
      const length = Number(res.headers['content-length'])
      if (!Number.isSafeInteger(length) || length < 1 || length > opts.maxBytes) {
        throw new InvalidMessageError(
          `bulk chunk of ${String(res.headers['content-length'])} bytes, limit ${opts.maxBytes}`,
        )
      }
      const attestation = decodeAttestationHeader(res.headers[ATTESTATION_HEADER])
      // Taken before the body is read, so the wait overlaps the transfer (as on the libp2p path).
      await opts.bucket?.take(length, { signal })
      const bytes = new Uint8Array(length)
      let at = 0
      for await (const part of res.body) {
        const p = part as Uint8Array
        if (at + p.byteLength > length) throw new InvalidMessageError(`bulk chunk longer than its ${length} bytes`)
        bytes.set(p, at)
        at += p.byteLength
        opts.onProgress?.(at)
      }
      if (at !== length) throw new BulkUnavailableError(`bulk chunk ended after ${at} of ${length} bytes`)
      complete = true
      return attestation === undefined ? { bytes } : { bytes, attestation }
    } finally {
      if (!complete && !res.body.destroyed) {
        // Dropping a body half read closes its connection; the abort error it raises is ours, not news.
        res.body.on('error', () => {})
        res.body.destroy()
      }
    }
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
    pool = new Pool(`https://${host}:${target.port}`, {
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
