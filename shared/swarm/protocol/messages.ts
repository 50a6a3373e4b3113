/**
 * Control messages of `/shoal/chunks/1.0.0`: JSON objects, one per length-prefixed frame, at most
 * MAX_CONTROL_FRAME_BYTES. Decoding validates every field, so handlers and callers see typed values only; unknown
 * fields are ignored so a later minor version can add some. Binary payloads (bitfields, attestations) are
 * canonical base64 inside the JSON; large payloads (chunks, signed maps) follow in a data frame.
 *
 *   request                                          response
 *   { t: 'map', digest }                             { t: 'map', length } + data frame | { t: 'none' }
 *   { t: 'have', digest, known?, waitMs? }           { t: 'have', size, chunkSize, bits, count, complete } | none
 *   { t: 'chunk', digest, index }                    { t: 'chunk', index, length, attestation? } + data frame
 *                                                    | { t: 'none' } | { t: 'busy' }
 *   { t: 'fetch', digest, registry, name }           { t: 'fetching', size, chunkSize } | { t: 'error', message }
 *   { t: 'prefetch', digest, registry, name, hold? } { t: 'prefetching' } | { t: 'error', message }
 *   { t: 'bulk', digest }                            { t: 'bulk', port, token, ttlMs } | { t: 'none' }
 *
 * Format 1.1 (still `/shoal/chunks/1.0.0`: the fields are optional and a node that predates them ignores them):
 * `have` requests and answers may carry `site`, the sender's edge site (`--site`), checked against the site-name
 * grammar. A site is a claim, never trusted for integrity: it only steers who fetches which chunk from where.
 *
 * `bulk` (added within 1.0.0: a peer that predates it resets the stream, and the asker falls back to `chunk`)
 * hands out a ticket for the bulk data path: chunk bytes over HTTPS to `port` on the same host, see
 * shared/swarm/bulk.
 */

import { type ChunkAttestation, decodeChunkAttestation, encodeChunkAttestation } from '../../chunks/attestation.ts'
import { Bitfield } from '../../chunks/bitfield.ts'
import { chunkCount, isValidChunkSize } from '../../chunks/chunk-map.ts'
import { MAX_CHUNK_SIZE_BYTES } from '../../chunks/constants.ts'
import { type Digest, isDigest } from '../../oci/digest.ts'
import { isRepositoryName } from '../../oci/reference.ts'
import { isSiteName } from '../../config/site.ts'
import { MAX_TICKET_TTL_MS as MAX_BULK_TICKET_TTL_MS, TOKEN_RE as BULK_TOKEN_RE } from '../bulk/constants.ts'
import { MAX_CONTROL_FRAME_BYTES, MAX_ERROR_MESSAGE_CHARS, MAX_REGISTRY_CHARS } from './constants.ts'
import { InvalidMessageError } from '../wire/errors.ts'

export type Request =
  | { readonly t: 'map'; readonly digest: Digest }
  | {
      readonly t: 'have'
      readonly digest: Digest
      readonly known?: number
      readonly waitMs?: number
      /** The asker's edge site (format 1.1), so a seeder super-seeds per site. */
      readonly site?: string
    }
  | { readonly t: 'chunk'; readonly digest: Digest; readonly index: number }
  | { readonly t: 'fetch'; readonly digest: Digest; readonly registry: string; readonly name: string }
  /** A seeder asks an agent to pull a blob through the swarm into its cache ahead of need (preheat scope). */
  | {
      readonly t: 'prefetch'
      readonly digest: Digest
      readonly registry: string
      readonly name: string
      /** Seeder to seeder: the owner should also keep the blob for its preheat TTL (agents refuse it). */
      readonly hold?: boolean
    }
  /** A ticket to fetch this blob's chunks over the bulk (HTTPS) path. */
  | { readonly t: 'bulk'; readonly digest: Digest }

export type RequestType = Request['t']

export interface HaveState {
  readonly size: number
  readonly chunkSize: number
  readonly bitfield: Bitfield
  readonly complete: boolean
  /**
   * Other peers fetching the same blob (multiaddrs ending in /p2p/<id>), as a seeder sees them ask:
   * a tracker's hint, so agents find each other without waiting for the DHT.
   */
  readonly peers?: readonly string[]
  /** The answering node's edge site (format 1.1); absent for none, or from a node that predates sites. */
  readonly site?: string
}

/** At most this many peer hints in one `have` answer, each at most this long. */
export const MAX_HAVE_PEERS = 16
const MAX_PEER_ADDR_LENGTH = 256
const PEER_ADDR_RE = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d{1,5}\/p2p\/[1-9A-HJ-NP-Za-km-z]{40,60}$/

export type Response =
  | { readonly t: 'map'; readonly length: number }
  | ({ readonly t: 'have' } & HaveState)
  | { readonly t: 'chunk'; readonly index: number; readonly length: number; readonly attestation?: ChunkAttestation }
  | { readonly t: 'fetching'; readonly size: number; readonly chunkSize: number }
  | { readonly t: 'prefetching' }
  | { readonly t: 'bulk'; readonly port: number; readonly token: string; readonly ttlMs: number }
  | { readonly t: 'error'; readonly message: string }
  | { readonly t: 'none' }
  | { readonly t: 'busy' }

export type ResponseType = Response['t']

const REQUEST_TYPES: ReadonlySet<string> = new Set<RequestType>(['map', 'have', 'chunk', 'fetch', 'prefetch', 'bulk'])

// host or IPv4 or [IPv6], optional port: what a registry is called in an image reference.
const REGISTRY_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/

export function isRegistryHost(value: string): boolean {
  return value.length <= MAX_REGISTRY_CHARS && REGISTRY_RE.test(value)
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true })
const utf8Encoder = new TextEncoder()

function fail(message: string): never {
  throw new InvalidMessageError(message)
}

/** Parses one control frame into a plain object; anything else (bad UTF-8, bad JSON, array, null) is invalid. */
function parseObject(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.byteLength > MAX_CONTROL_FRAME_BYTES) fail(`control frame of ${bytes.byteLength} bytes`)
  let value: unknown
  try {
    value = JSON.parse(utf8Decoder.decode(bytes))
  } catch (err) {
    throw new InvalidMessageError('control frame is not UTF-8 JSON', { cause: err })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('control frame is not a JSON object')
  return value as Record<string, unknown>
}

function stringify(value: object): Uint8Array {
  const bytes = utf8Encoder.encode(JSON.stringify(value))
  // Our own messages are small by construction; a huge one means a caller bug, not a peer's.
  if (bytes.byteLength > MAX_CONTROL_FRAME_BYTES) throw new RangeError(`control message of ${bytes.byteLength} bytes`)
  return bytes
}

function field(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined
}

function count(obj: Record<string, unknown>, key: string): number {
  const v = field(obj, key)
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${key} must be a non-negative integer`)
  return v
}

function optionalCount(obj: Record<string, unknown>, key: string): number | undefined {
  return field(obj, key) === undefined ? undefined : count(obj, key)
}

function string(obj: Record<string, unknown>, key: string): string {
  const v = field(obj, key)
  if (typeof v !== 'string') fail(`${key} must be a string`)
  return v
}

function boolean(obj: Record<string, unknown>, key: string): boolean {
  const v = field(obj, key)
  if (typeof v !== 'boolean') fail(`${key} must be a boolean`)
  return v
}

function digest(obj: Record<string, unknown>): Digest {
  const v = string(obj, 'digest')
  if (!isDigest(v)) fail('invalid digest')
  return v
}

function chunkSize(obj: Record<string, unknown>): number {
  const v = count(obj, 'chunkSize')
  if (!isValidChunkSize(v)) fail(`invalid chunk size ${v}`)
  return v
}

/** Strict base64: only the canonical encoding of some bytes is accepted (Buffer.from alone skips garbage). */
function base64(obj: Record<string, unknown>, key: string): Uint8Array {
  const v = string(obj, key)
  const bytes = Buffer.from(v, 'base64')
  if (bytes.toString('base64') !== v) fail(`${key} is not canonical base64`)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

export function encodeRequest(req: Request): Uint8Array {
  return stringify(req)
}

export function decodeRequest(bytes: Uint8Array): Request {
  const obj = parseObject(bytes)
  const t = field(obj, 't')
  if (typeof t !== 'string' || !REQUEST_TYPES.has(t)) fail(`unknown request type ${JSON.stringify(t)?.slice(0, 40)}`)
  switch (t as RequestType) {
    case 'map':
      return { t: 'map', digest: digest(obj) }
    case 'have': {
      const known = optionalCount(obj, 'known')
      const waitMs = optionalCount(obj, 'waitMs')
      const site = optionalSite(obj)
      return {
        t: 'have',
        digest: digest(obj),
        ...(known === undefined ? {} : { known }),
        ...(waitMs === undefined ? {} : { waitMs }),
        ...(site === undefined ? {} : { site }),
      }
    }
    case 'chunk':
      return { t: 'chunk', digest: digest(obj), index: count(obj, 'index') }
    case 'bulk':
      return { t: 'bulk', digest: digest(obj) }
    case 'fetch':
    case 'prefetch': {
      const registry = string(obj, 'registry')
      const name = string(obj, 'name')
      if (!isRegistryHost(registry)) fail('invalid registry')
      if (!isRepositoryName(name)) fail('invalid repository name')
      if (t === 'fetch') return { t, digest: digest(obj), registry, name }
      const hold = field(obj, 'hold') === undefined ? false : boolean(obj, 'hold')
      return { t: 'prefetch', digest: digest(obj), registry, name, ...(hold ? { hold } : {}) }
    }
  }
}

export function encodeResponse(res: Response): Uint8Array {
  switch (res.t) {
    case 'have':
      return stringify({
        t: 'have',
        size: res.size,
        chunkSize: res.chunkSize,
        bits: toBase64(res.bitfield.encode()),
        count: res.bitfield.count,
        complete: res.complete,
        ...(res.peers === undefined || res.peers.length === 0 ? {} : { peers: res.peers.slice(0, MAX_HAVE_PEERS) }),
        ...(res.site === undefined ? {} : { site: res.site }),
      })
    case 'chunk':
      return stringify({
        t: 'chunk',
        index: res.index,
        length: res.length,
        ...(res.attestation === undefined ? {} : { attestation: toBase64(encodeChunkAttestation(res.attestation)) }),
      })
    case 'error':
      return stringify({ t: 'error', message: res.message.slice(0, MAX_ERROR_MESSAGE_CHARS) })
    default:
      return stringify(res)
  }
}

/**
 * Decodes and validates a response on its own terms (types, geometry, bitfield against the announced size,
 * attestation well formed); whether it answers the request that was sent is the client's check.
 */
export function decodeResponse(bytes: Uint8Array): Response {
  const obj = parseObject(bytes)
  const t = field(obj, 't')
  switch (t) {
    case 'none':
    case 'busy':
    case 'prefetching':
      return { t }
    case 'map':
      return { t, length: count(obj, 'length') }
    case 'have':
      return { t, ...decodeHave(obj) }
    case 'chunk': {
      const index = count(obj, 'index')
      const length = count(obj, 'length')
      if (length === 0 || length > MAX_CHUNK_SIZE_BYTES) fail(`chunk length ${length}`)
      if (field(obj, 'attestation') === undefined) return { t, index, length }
      let attestation: ChunkAttestation
      try {
        attestation = decodeChunkAttestation(base64(obj, 'attestation'))
      } catch (err) {
        if (err instanceof InvalidMessageError) throw err
        throw new InvalidMessageError('invalid chunk attestation', { cause: err })
      }
      return { t, index, length, attestation }
    }
    case 'bulk': {
      const port = count(obj, 'port')
      const token = string(obj, 'token')
      const ttlMs = count(obj, 'ttlMs')
      if (port < 1 || port > 65_535) fail(`invalid port ${port}`)
      if (!BULK_TOKEN_RE.test(token)) fail('invalid bulk token')
      if (ttlMs < 1 || ttlMs > MAX_BULK_TICKET_TTL_MS) fail(`invalid ticket lifetime ${ttlMs}`)
      return { t, port, token, ttlMs }
    }
    case 'fetching': {
      const size = count(obj, 'size')
      return { t, size, chunkSize: chunkSize(obj) }
    }
    case 'error':
      return { t, message: string(obj, 'message').slice(0, MAX_ERROR_MESSAGE_CHARS) }
    default:
      return fail(`unknown response type ${JSON.stringify(t)?.slice(0, 40)}`)
  }
}

function decodeHave(obj: Record<string, unknown>): HaveState {
  const size = count(obj, 'size')
  const cs = chunkSize(obj)
  const bits = base64(obj, 'bits')
  const n = chunkCount(size, cs)
  // Checked before Bitfield.decode, which allocates for the announced length first: a hostile size must not
  // make us allocate gigabytes.
  if (bits.byteLength !== Math.ceil(n / 8)) fail(`bitfield of ${bits.byteLength} bytes for ${n} chunks`)
  let bitfield: Bitfield
  try {
    bitfield = Bitfield.decode(bits, n)
  } catch (err) {
    throw new InvalidMessageError('invalid bitfield', { cause: err })
  }
  const announced = count(obj, 'count')
  const complete = boolean(obj, 'complete')
  if (announced !== bitfield.count) fail(`have announces ${announced} chunks, bitfield holds ${bitfield.count}`)
  if (complete && !bitfield.complete) fail('have claims complete with chunks missing')
  const site = optionalSite(obj)
  const rawPeers = obj['peers']
  if (rawPeers === undefined)
    return { size, chunkSize: cs, bitfield, complete, ...(site === undefined ? {} : { site }) }
  if (!Array.isArray(rawPeers) || rawPeers.length > MAX_HAVE_PEERS) fail('peers must be a short list')
  for (const p of rawPeers) {
    if (typeof p !== 'string' || p.length > MAX_PEER_ADDR_LENGTH || !PEER_ADDR_RE.test(p)) fail('invalid peer address')
  }
  return {
    size,
    chunkSize: cs,
    bitfield,
    complete,
    peers: rawPeers as string[],
    ...(site === undefined ? {} : { site }),
  }
}

function optionalSite(obj: Record<string, unknown>): string | undefined {
  if (field(obj, 'site') === undefined) return undefined
  const v = string(obj, 'site')
  if (!isSiteName(v)) fail('invalid site')
  return v
}
