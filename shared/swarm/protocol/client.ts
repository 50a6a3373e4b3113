import { isPeerId, type PeerId, type Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { ChunkAttestation } from '../../chunks/attestation.ts'
import type { Bitfield } from '../../chunks/bitfield.ts'
import { chunkRange } from '../../chunks/chunk-map.ts'
import { MAX_CHUNK_SIZE_BYTES } from '../../chunks/constants.ts'
import { decodeSignedChunkMap, maxEncodedSignedChunkMapBytes, type SignedChunkMap } from '../../chunks/signed-map.ts'
import type { Digest } from '../../oci/digest.ts'
import type { TokenBucket } from '../../rate/token-bucket.ts'
import { TICKET_TIMEOUT_MS as BULK_TICKET_TIMEOUT_MS } from '../bulk/constants.ts'
import { ipOf } from '../bulk/listen.ts'
import { type BulkTicket, BulkRoute } from '../bulk/route.ts'
import {
  CHUNK_PROTOCOL,
  DEFAULT_CLIENT_REQUEST_TIMEOUT_MS,
  DEFAULT_MAX_OUTBOUND_STREAMS_PER_PEER,
  MAX_CONTROL_FRAME_BYTES,
  MAX_HAVE_WAIT_MS,
  MAX_LENGTH_PREFIX_BYTES,
} from './constants.ts'
import { peerIdOf } from '../seeders.ts'
import { deadline } from '../wire/deadline.ts'
import { exchangeFailure } from '../wire/exchange.ts'
import { InvalidMessageError, PeerTimeoutError, RemoteError } from '../wire/errors.ts'
import { FrameStream } from './framing.ts'
import type { ChunkClientInit } from './index.ts'
import { decodeResponse, encodeRequest, type Request, type Response, type ResponseType } from './messages.ts'

/** A peer to ask: its id (dialled through the peer store) or an address to dial. */
export type PeerTarget = PeerId | Multiaddr

export interface HaveResult {
  readonly size: number
  readonly chunkSize: number
  readonly bitfield: Bitfield
  readonly complete: boolean
  /** Other peers fetching this blob (multiaddrs with /p2p/), when the answering node tracks them. */
  readonly peers?: readonly string[]
  /** The site the answering node says it is in (edge sites). */
  readonly site?: string
}

/** Chunk bytes exactly as received (NOT verified: the caller checks them against a trusted map or attestation). */
export type ChunkResult = { readonly bytes: Uint8Array; readonly attestation?: ChunkAttestation } | 'none' | 'busy'

/** Chunks received per path, and bulk attempts that fell back to the stream. */
export interface ChunkTransfers {
  readonly bulk: number
  readonly stream: number
  readonly fallbacks: number
}

const MAX_SIGNED_MAP_BYTES = maxEncodedSignedChunkMapBytes()
const HEADER_BUFFER_BYTES = MAX_CONTROL_FRAME_BYTES + 2 * MAX_LENGTH_PREFIX_BYTES

interface Exchange {
  readonly frames: FrameStream
  readonly signal: AbortSignal
}

/**
 * The asking side of `/shoal/chunks/1.0.0`. Every answer is validated before it is returned (types, geometry,
 * sizes against what was announced and what the caller allows); a malformed or mismatched one is an
 * InvalidMessageError, a failed exchange a ProtocolError, a slow one a PeerTimeoutError. An abort of the
 * caller's signal rejects with the signal's reason.
 */
/** The peer id of a target, when it names one. */
function idOf(peer: PeerTarget): string | undefined {
  return isPeerId(peer) ? peer.toString() : peerIdOf(peer)
}

export class ChunkClient {
  readonly #node: ChunkClientInit['node']
  readonly #timeoutMs: number
  readonly #bucket: TokenBucket | undefined
  readonly #budget: ChunkClientInit['downloadBudget']
  readonly #maxOutboundStreams: number
  readonly #bulk: BulkRoute | undefined
  #streamChunks = 0

  /** The download limit for bytes from `peer`: by its site with a budget, else the node's. */
  #bucketFor(peer: PeerTarget): TokenBucket | undefined {
    if (this.#budget === undefined) return this.#bucket
    return this.#budget.downloadFrom(idOf(peer) ?? '')
  }

  constructor(init: ChunkClientInit) {
    this.#node = init.node
    this.#timeoutMs = init.requestTimeoutMs ?? DEFAULT_CLIENT_REQUEST_TIMEOUT_MS
    this.#bucket = init.downloadBucket
    this.#budget = init.downloadBudget
    this.#maxOutboundStreams = init.maxOutboundStreamsPerPeer ?? DEFAULT_MAX_OUTBOUND_STREAMS_PER_PEER
    this.#bulk =
      init.bulk === undefined
        ? undefined
        : new BulkRoute({
            client: init.bulk,
            ticket: (peer, digest) =>
              this.getBulkTicket(peer, digest, { signal: AbortSignal.timeout(BULK_TICKET_TIMEOUT_MS) }),
          })
  }

  get transfers(): ChunkTransfers {
    const bulk = this.#bulk?.counts
    return { bulk: bulk?.chunks ?? 0, stream: this.#streamChunks, fallbacks: bulk?.fallbacks ?? 0 }
  }

  /** The peer's signed chunk map, or undefined when it has none. The signature is NOT checked here. */
  async getMap(
    peer: PeerTarget,
    digest: Digest,
    opts: { signal?: AbortSignal } = {},
  ): Promise<SignedChunkMap | undefined> {
    const req: Request = { t: 'map', digest }
    return this.#exchange(peer, req, { bufferBytes: MAX_SIGNED_MAP_BYTES, signal: opts.signal }, async (x) => {
      const res = expectType(await readResponse(x), ['map', 'none'])
      if (res.t === 'none') return undefined
      if (res.length > MAX_SIGNED_MAP_BYTES) throw new InvalidMessageError(`signed map of ${res.length} bytes`)
      const bytes = await readData(x, res.length, undefined, undefined)
      let signed: SignedChunkMap
      try {
        signed = decodeSignedChunkMap(bytes)
      } catch (err) {
        throw new InvalidMessageError('invalid signed chunk map', { cause: err })
      }
      if (signed.map.digest !== digest)
        throw new InvalidMessageError(`map is for ${signed.map.digest}, asked ${digest}`)
      return signed
    })
  }

  /**
   * What the peer holds of `digest`, or undefined when it holds nothing. With `known` (the count from the last
   * answer) and `waitMs`, the peer holds the answer until that count changes or min(waitMs, 10 s) passes.
   */
  async getHave(
    peer: PeerTarget,
    digest: Digest,
    opts: { known?: number; waitMs?: number; site?: string | undefined; signal?: AbortSignal } = {},
  ): Promise<HaveResult | undefined> {
    const { known, waitMs, site } = opts
    const req: Request = {
      t: 'have',
      digest,
      ...(known === undefined ? {} : { known }),
      ...(waitMs === undefined ? {} : { waitMs }),
      ...(site === undefined ? {} : { site }),
    }
    const extraMs = Math.min(waitMs ?? 0, MAX_HAVE_WAIT_MS)
    return this.#exchange(peer, req, { bufferBytes: 0, signal: opts.signal, extraMs }, async (x) => {
      const res = expectType(await readResponse(x), ['have', 'none'])
      if (res.t === 'none') return undefined
      const { size, chunkSize, bitfield, complete, peers, site } = res
      const id = idOf(peer)
      if (id !== undefined) this.#budget?.learn(id, site)
      return {
        size,
        chunkSize,
        bitfield,
        complete,
        ...(peers === undefined ? {} : { peers }),
        ...(site === undefined ? {} : { site }),
      }
    })
  }

  /**
   * One chunk's bytes exactly as received, `'none'` if the peer does not hold it, `'busy'` if it is at its upload
   * limit. A chunk longer than `maxBytes` (default 64 MiB) is refused before it is buffered. `onProgress` hears
   * the bytes received so far as the body arrives (before anything is verified: a sign of life, not of worth).
   */
  async getChunk(
    peer: PeerTarget,
    digest: Digest,
    index: number,
    opts: { maxBytes?: number; signal?: AbortSignal; onProgress?: (received: number) => void } = {},
  ): Promise<ChunkResult> {
    const maxBytes = opts.maxBytes ?? MAX_CHUNK_SIZE_BYTES
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_CHUNK_SIZE_BYTES) {
      throw new RangeError(`maxBytes ${maxBytes} outside 1..${MAX_CHUNK_SIZE_BYTES}`)
    }
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`invalid chunk index ${index}`)
    if (this.#bulk !== undefined) {
      const viaBulk = await this.#bulkChunk(this.#bulk, peer, digest, index, maxBytes, opts.signal, opts.onProgress)
      if (viaBulk !== undefined) return viaBulk
    }
    const req: Request = { t: 'chunk', digest, index }
    return this.#exchange(peer, req, { bufferBytes: maxBytes, signal: opts.signal }, async (x) => {
      const res = expectType(await readResponse(x), ['chunk', 'none', 'busy'])
      if (res.t !== 'chunk') return res.t
      if (res.index !== index) throw new InvalidMessageError(`answer is for chunk ${res.index}, asked ${index}`)
      if (res.length > maxBytes) throw new InvalidMessageError(`chunk of ${res.length} bytes, limit ${maxBytes}`)
      checkAttestation(res.attestation, digest, index, res.length)
      const bytes = await readData(x, res.length, this.#bucketFor(peer), opts.onProgress)
      this.#streamChunks++
      return res.attestation === undefined ? { bytes } : { bytes, attestation: res.attestation }
    })
  }

  /**
   * A ticket for the peer's bulk data path, bound to our peer id and `digest`, with the address to use it at
   * (the IP of our libp2p connection to the peer, the port it names). Undefined when the peer serves none.
   */
  async getBulkTicket(
    peer: PeerTarget,
    digest: Digest,
    opts: { signal?: AbortSignal } = {},
  ): Promise<BulkTicket | undefined> {
    const dial = deadline(
      this.#timeoutMs,
      () => new PeerTimeoutError(`no connection to ${peer.toString()} within ${this.#timeoutMs} ms`),
      [opts.signal],
    )
    let connection
    try {
      connection = isPeerId(peer)
        ? (this.#node.getConnections(peer).find((c) => c.status === 'open' && c.limits === undefined) ??
          (await this.#node.dial(peer, { signal: dial.signal })))
        : await this.#node.dial(peer, { signal: dial.signal })
    } finally {
      dial.dispose()
    }
    const host = ipOf(connection.remoteAddr)
    // A relayed (limited) connection has no direct route to the peer's bulk port.
    if (host === undefined || connection.limits !== undefined) return undefined
    const remote = connection.remotePeer
    const req: Request = { t: 'bulk', digest }
    return this.#exchange(remote, req, { bufferBytes: 0, signal: opts.signal }, async (x) => {
      const res = expectType(await readResponse(x), ['bulk', 'none'])
      if (res.t === 'none') return undefined
      return { peer: remote, host, port: res.port, token: res.token, ttlMs: res.ttlMs }
    })
  }

  /** The chunk over the bulk path, under the same request timeout as the stream; undefined → use the stream. */
  async #bulkChunk(
    route: BulkRoute,
    peer: PeerTarget,
    digest: Digest,
    index: number,
    maxBytes: number,
    signal: AbortSignal | undefined,
    onProgress: ((received: number) => void) | undefined,
  ): Promise<ChunkResult | undefined> {
    const request = deadline(
      this.#timeoutMs,
      () => new PeerTimeoutError(`bulk chunk request to ${peer.toString()} not answered within ${this.#timeoutMs} ms`),
      [signal],
    )
    try {
      const res = await route.getChunk(peer, digest, index, {
        maxBytes,
        signal: request.signal,
        ...(this.#bucketFor(peer) === undefined ? {} : { bucket: this.#bucketFor(peer)! }),
        ...(onProgress === undefined ? {} : { onProgress }),
      })
      if (res === undefined || typeof res === 'string') return res
      checkAttestation(res.attestation, digest, index, res.bytes.byteLength)
      return res
    } finally {
      request.dispose()
    }
  }

  /** Asks a seeder to pull `digest` from the origin for the swarm; resolves once it has started. */
  async fetch(
    peer: PeerTarget,
    digest: Digest,
    registry: string,
    name: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ size: number; chunkSize: number }> {
    const req: Request = { t: 'fetch', digest, registry, name }
    return this.#exchange(peer, req, { bufferBytes: 0, signal: opts.signal }, async (x) => {
      const res = expectType(await readResponse(x), ['fetching', 'error'])
      if (res.t === 'error') throw new RemoteError(`peer could not fetch ${digest}: ${res.message}`)
      return { size: res.size, chunkSize: res.chunkSize }
    })
  }

  /**
   * Asks an agent to pull `digest` into its cache through the swarm (or, with `hold`, a seeder to pull it from the
   * origin and keep it for its preheat TTL); resolves once it accepted.
   */
  async prefetch(
    peer: PeerTarget,
    digest: Digest,
    registry: string,
    name: string,
    opts: { hold?: boolean; signal?: AbortSignal } = {},
  ): Promise<void> {
    const req: Request = { t: 'prefetch', digest, registry, name, ...(opts.hold === true ? { hold: true } : {}) }
    await this.#exchange(peer, req, { bufferBytes: 0, signal: opts.signal }, async (x) => {
      const res = expectType(await readResponse(x), ['prefetching', 'error'])
      if (res.t === 'error') throw new RemoteError(`peer will not prefetch ${digest}: ${res.message}`)
    })
  }

  /**
   * A stream on the open connection to `peer` if there is one (dialProtocol by peer id goes through the dialer
   * and the peer store first, which costs milliseconds per chunk), else a dial. The protocol is selected
   * optimistically, together with the request: we write first, so that saves a round trip per request.
   */
  async #open(peer: PeerTarget, signal: AbortSignal): Promise<Stream> {
    const opts = { signal, maxOutboundStreams: this.#maxOutboundStreams, negotiateFully: false }
    if (isPeerId(peer)) {
      const connection = this.#node.getConnections(peer).find((c) => c.status === 'open' && c.limits === undefined)
      if (connection !== undefined) return await connection.newStream(CHUNK_PROTOCOL, opts)
    }
    return await this.#node.dialProtocol(peer, CHUNK_PROTOCOL, opts)
  }

  async #exchange<T>(
    peer: PeerTarget,
    req: Request,
    opts: { bufferBytes: number; signal: AbortSignal | undefined; extraMs?: number },
    body: (x: Exchange) => Promise<T>,
  ): Promise<T> {
    opts.signal?.throwIfAborted()
    const timeoutMs = this.#timeoutMs + (opts.extraMs ?? 0)
    const request = deadline(
      timeoutMs,
      () => new PeerTimeoutError(`${req.t} request to ${peer.toString()} not answered within ${timeoutMs} ms`),
      [opts.signal],
    )
    const { signal } = request
    let stream: Stream | undefined
    try {
      stream = await this.#open(peer, signal)
      const frames = new FrameStream(stream, { maxBufferBytes: HEADER_BUFFER_BYTES + opts.bufferBytes })
      await frames.write([encodeRequest(req)], { signal })
      // Half-close: the request is all we send; the peer closes its side after the response.
      await stream.close({ signal })
      return await body({ frames, signal })
    } catch (err) {
      exchangeFailure(err, {
        signal,
        callerSignal: opts.signal,
        stream,
        what: `${req.t} request to ${peer.toString()}`,
      })
    } finally {
      request.dispose()
    }
  }
}

async function readResponse(x: Exchange): Promise<Response> {
  return decodeResponse(await x.frames.read(MAX_CONTROL_FRAME_BYTES, { signal: x.signal }))
}

function expectType<const K extends ResponseType>(res: Response, allowed: readonly K[]): Extract<Response, { t: K }> {
  if (!(allowed as readonly ResponseType[]).includes(res.t)) {
    throw new InvalidMessageError(`unexpected ${res.t} response, want ${allowed.join(' or ')}`)
  }
  return res as Extract<Response, { t: K }>
}

/** An attestation sent with a chunk must be about that chunk and agree with its length. */
function checkAttestation(a: ChunkAttestation | undefined, digest: Digest, index: number, length: number): void {
  if (a === undefined) return
  if (a.digest !== digest || a.index !== index) {
    throw new InvalidMessageError(`attestation is for chunk ${a.index} of ${a.digest}`)
  }
  const { start, end } = chunkRange(a, index)
  if (end - start !== length) throw new InvalidMessageError(`chunk of ${length} bytes, attestation says ${end - start}`)
}

/** Reads the data frame that follows a header announcing `length`: a longer one is refused at its prefix. */
async function readData(
  x: Exchange,
  length: number,
  bucket: TokenBucket | undefined,
  onProgress: ((received: number) => void) | undefined,
): Promise<Uint8Array> {
  const actual = await x.frames.readLength(length, { signal: x.signal })
  if (actual !== length) throw new InvalidMessageError(`data frame of ${actual} bytes, announced ${length}`)
  // Taken before the body is read, so the wait overlaps the transfer instead of adding to it.
  await bucket?.take(length, { signal: x.signal })
  return await x.frames.readBody(
    length,
    onProgress === undefined ? { signal: x.signal } : { signal: x.signal, onProgress },
  )
}
