import { isPeerId, type PeerId, type Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { type Digest, digestAlgorithm, digestOf, MAX_MANIFEST_BYTES } from '../../oci/index.ts'
import { MAX_LENGTH_PREFIX_BYTES } from '../protocol/constants.ts'
import { FrameStream } from '../protocol/framing.ts'
import { deadline } from '../wire/deadline.ts'
import { exchangeFailure } from '../wire/exchange.ts'
import { InvalidMessageError, PeerTimeoutError } from '../wire/errors.ts'
import { DEFAULT_PEER_TIMEOUT_MS, MANIFEST_PROTOCOL, MAX_MANIFEST_CONTROL_FRAME_BYTES } from './constants.ts'
import type { ManifestClientInit, PeerManifest } from './index.ts'
import { decodeManifestResponse, encodeManifestRequest } from './messages.ts'

/** The most a reply may hold unread: its header frame, then the manifest's data frame, with their prefixes. */
const REPLY_BUFFER_BYTES = MAX_MANIFEST_CONTROL_FRAME_BYTES + MAX_MANIFEST_BYTES + 2 * MAX_LENGTH_PREFIX_BYTES

/**
 * The asking side of `/shoal/manifests/1.0.0`. A manifest is returned only once its bytes hash to the digest asked
 * for: a peer's bytes are never trusted. A wrong or malformed answer is an InvalidMessageError, a failed exchange
 * (including a peer that does not speak the protocol) a ProtocolError, a slow one a PeerTimeoutError; an abort of
 * the caller's signal rejects with its reason.
 */
export class ManifestClient {
  readonly #node: ManifestClientInit['node']
  readonly #timeoutMs: number

  constructor(init: ManifestClientInit) {
    this.#node = init.node
    this.#timeoutMs = init.requestTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS
  }

  /** The manifest `digest` from `peer`, verified; undefined when the peer does not hold it. */
  async get(
    peer: PeerId | Multiaddr,
    digest: Digest,
    opts: { signal?: AbortSignal; timeoutMs?: number; where?: { registry: string; name: string } } = {},
  ): Promise<PeerManifest | undefined> {
    opts.signal?.throwIfAborted()
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs
    const request = deadline(
      timeoutMs,
      () => new PeerTimeoutError(`manifest request to ${peer.toString()} not answered within ${timeoutMs} ms`),
      [opts.signal],
    )
    const { signal } = request
    let stream: Stream | undefined
    try {
      stream = await this.#open(peer, signal)
      const frames = new FrameStream(stream, { maxBufferBytes: REPLY_BUFFER_BYTES })
      await frames.write([encodeManifestRequest({ t: 'manifest', digest, ...opts.where })], { signal })
      await stream.close({ signal })
      const res = decodeManifestResponse(await frames.read(MAX_MANIFEST_CONTROL_FRAME_BYTES, { signal }))
      if (res.t === 'none') return undefined
      // The header's length was checked against MAX_MANIFEST_BYTES; the data frame may not exceed it either.
      const length = await frames.readLength(res.length, { signal })
      if (length !== res.length) throw new InvalidMessageError(`data frame of ${length} bytes, announced ${res.length}`)
      const bytes = Uint8Array.from(await frames.readBody(length, { signal }))
      const actual = digestOf(bytes, digestAlgorithm(digest))
      if (actual !== digest) throw new InvalidMessageError(`manifest from ${peer.toString()} hashes to ${actual}`)
      return { mediaType: res.mediaType, bytes }
    } catch (err) {
      exchangeFailure(err, {
        signal,
        callerSignal: opts.signal,
        stream,
        what: `manifest request to ${peer.toString()}`,
      })
    } finally {
      request.dispose()
    }
  }

  /** A stream on an open direct connection when there is one, else a dial; the protocol is negotiated in full. */
  async #open(peer: PeerId | Multiaddr, signal: AbortSignal): Promise<Stream> {
    if (isPeerId(peer)) {
      const connection = this.#node.getConnections(peer).find((c) => c.status === 'open' && c.limits === undefined)
      if (connection !== undefined) return await connection.newStream(MANIFEST_PROTOCOL, { signal })
    }
    return await this.#node.dialProtocol(peer, MANIFEST_PROTOCOL, { signal })
  }
}
