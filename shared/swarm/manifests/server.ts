import type { Connection, Startable, Stream } from '@libp2p/interface'
import { digestAlgorithm, digestOf, MAX_MANIFEST_BYTES } from '../../oci/index.ts'
import { MAX_LENGTH_PREFIX_BYTES } from '../protocol/constants.ts'
import { FrameStream } from '../protocol/framing.ts'
import { type Deadline, deadline } from '../wire/deadline.ts'
import { InvalidMessageError, PeerTimeoutError, ProtocolError } from '../wire/errors.ts'
import {
  DEFAULT_SERVER_REQUEST_TIMEOUT_MS,
  MANIFEST_PROTOCOL,
  MAX_INBOUND_STREAMS_PER_PEER,
  MAX_MANIFEST_CONTROL_FRAME_BYTES,
} from './constants.ts'
import type { ManifestServerComponents, ManifestServerInit } from './index.ts'
import { decodeManifestRequest, encodeManifestResponse, isMediaType } from './messages.ts'

type Log = NonNullable<ManifestServerInit['log']>
const silent: Log = { debug: () => {} }

/**
 * Serves `/shoal/manifests/1.0.0` from the node's manifest cache. The cache holds only manifests whose bytes hashed
 * to their digest when they were put; they are hashed once more before they leave, so a damaged record is `none`,
 * never a wrong answer. Each stream carries one request under its own deadline; anything malformed resets it.
 */
export class ManifestServer implements Startable {
  readonly #registrar: ManifestServerComponents['registrar']
  readonly #cache: ManifestServerInit['cache']
  readonly #fetch: ManifestServerInit['fetch']
  readonly #timeoutMs: number
  readonly #log: Log
  readonly #streams = new Set<Stream>()
  #stopping = new AbortController()
  #started = false
  #served = 0

  constructor(components: ManifestServerComponents, init: ManifestServerInit) {
    this.#registrar = components.registrar
    this.#cache = init.cache
    this.#fetch = init.fetch
    this.#timeoutMs = init.requestTimeoutMs ?? DEFAULT_SERVER_REQUEST_TIMEOUT_MS
    this.#log = init.log ?? silent
  }

  isStarted(): boolean {
    return this.#started
  }

  /** Manifests sent to peers since start. */
  get served(): number {
    return this.#served
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#stopping = new AbortController()
    await this.#registrar.handle(MANIFEST_PROTOCOL, (stream, connection) => this.#onStream(stream, connection), {
      maxInboundStreams: MAX_INBOUND_STREAMS_PER_PEER,
    })
    this.#started = true
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await this.#registrar.unhandle(MANIFEST_PROTOCOL)
    this.#stopping.abort(new ProtocolError('manifest server stopped'))
    for (const s of this.#streams) s.abort(new ProtocolError('manifest server stopped'))
  }

  async #onStream(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    this.#streams.add(stream)
    const closed = new AbortController()
    const onClose = (): void => closed.abort(new ProtocolError('stream closed by peer'))
    stream.addEventListener('close', onClose)
    const request: Deadline = deadline(
      this.#timeoutMs,
      () => new PeerTimeoutError(`manifest request not answered within ${this.#timeoutMs} ms`),
      [this.#stopping.signal, closed.signal],
    )
    const { signal } = request
    const onAbort = (): void => {
      const reason: unknown = signal.reason
      stream.abort(reason instanceof Error ? reason : new ProtocolError(String(reason)))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      // Only the request is expected from the peer: more than one control frame is refused.
      const frames = new FrameStream(stream, {
        maxBufferBytes: MAX_MANIFEST_CONTROL_FRAME_BYTES + MAX_LENGTH_PREFIX_BYTES,
      })
      const req = decodeManifestRequest(await frames.read(MAX_MANIFEST_CONTROL_FRAME_BYTES, { signal }))
      let hit = await this.#cache.getManifest(req.digest)
      if (hit === undefined && this.#fetch !== undefined && req.registry !== undefined && req.name !== undefined) {
        // A seeder: the asker's origin resolved this digest; pull it once, verified into the cache, then answer.
        await this.#fetch(req.digest, req.registry, req.name, signal).catch((err: unknown) => {
          this.#log.debug({ peer, digest: req.digest, err }, 'manifest pull for a peer failed')
        })
        signal.throwIfAborted()
        hit = await this.#cache.getManifest(req.digest)
      }
      signal.throwIfAborted()
      const usable =
        hit !== undefined &&
        hit.bytes.byteLength <= MAX_MANIFEST_BYTES &&
        isMediaType(hit.mediaType) &&
        digestOf(hit.bytes, digestAlgorithm(req.digest)) === req.digest
      if (!usable || hit === undefined) {
        await frames.write([encodeManifestResponse({ t: 'none' })], { signal })
      } else {
        const header = encodeManifestResponse({ t: 'manifest', mediaType: hit.mediaType, length: hit.bytes.byteLength })
        await frames.write([header, hit.bytes], { signal })
        this.#served++
      }
      stream.removeEventListener('close', onClose)
      await stream.close({ signal })
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : err
      if (reason instanceof InvalidMessageError) this.#log.debug({ peer, err: reason }, 'invalid manifest request')
      else this.#log.debug({ peer, err: reason }, 'manifest request failed')
      stream.abort(reason instanceof Error ? reason : new ProtocolError(String(reason)))
    } finally {
      signal.removeEventListener('abort', onAbort)
      request.dispose()
      stream.removeEventListener('close', onClose)
      this.#streams.delete(stream)
    }
  }
}
