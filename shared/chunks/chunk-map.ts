/**
 * Chunk maps and their canonical encoding.
 *
 * Canonical form (all integers big-endian, every field fixed width, so one map has exactly one encoding and
 * a decoder that accepts a byte string accepts no other for the same map):
 *
 *   u8   format version (1)
 *   u8   blob digest algorithm (1 = sha256, 2 = sha512)
 *   N    blob digest bytes (32 or 64)
 *   u64  blob size in bytes (<= 2^53 - 1)
 *   u32  chunk size in bytes (64 KiB .. 64 MiB)
 *   u32  chunk count (must equal ceil(size / chunk size))
 *   32×count  each chunk's SHA-256, in index order
 *
 * Binary rather than canonical JSON: no escaping or number-formatting rules to get wrong, and a 1 GiB layer's
 * map is 8 KiB instead of ~18 KiB.
 */
import { type Digest, isDigest } from '../oci/digest.ts'
import { encodedDigestLength, Reader, Writer } from './codec.ts'
import {
  CHUNK_DIGEST_BYTES,
  CHUNK_MAP_FORMAT_VERSION,
  DEFAULT_MAX_CHUNKS,
  MAX_CHUNK_SIZE_BYTES,
  MIN_CHUNK_SIZE_BYTES,
} from './constants.ts'
import { InvalidChunkIndexError, InvalidChunkMapError } from './errors.ts'

export interface ChunkMap {
  readonly digest: Digest
  readonly size: number
  readonly chunkSize: number
  /** `sha256:<hex>` of each chunk, in index order. */
  readonly chunks: readonly string[]
}

export interface ChunkGeometry {
  readonly size: number
  readonly chunkSize: number
}

export interface DecodeLimits {
  /** Refuse maps with more chunks than this (default DEFAULT_MAX_CHUNKS). */
  readonly maxChunks?: number
}

const CHUNK_DIGEST_RE = /^sha256:[a-f0-9]{64}$/

export function isChunkDigest(value: string): boolean {
  return CHUNK_DIGEST_RE.test(value)
}

export function isValidChunkSize(chunkSize: number): boolean {
  return Number.isInteger(chunkSize) && chunkSize >= MIN_CHUNK_SIZE_BYTES && chunkSize <= MAX_CHUNK_SIZE_BYTES
}

/** ceil(size / chunkSize); an empty blob has no chunks. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize)
}

/** Byte range `[start, end)` of chunk `index`; the last chunk may be short. */
export function chunkRange(geometry: ChunkGeometry, index: number): { start: number; end: number } {
  const count = chunkCount(geometry.size, geometry.chunkSize)
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new InvalidChunkIndexError(`chunk index ${index} out of range 0..${count - 1}`)
  }
  const start = index * geometry.chunkSize
  return { start, end: Math.min(start + geometry.chunkSize, geometry.size) }
}

/** Throws `fail(message)` unless digest, size and chunk size describe a blob Shoal can chunk. */
export function checkGeometry(
  g: { readonly digest: string; readonly size: number; readonly chunkSize: number },
  fail: (message: string) => Error,
): void {
  if (typeof g.digest !== 'string' || !isDigest(g.digest)) throw fail('invalid blob digest')
  if (!Number.isSafeInteger(g.size) || g.size < 0) throw fail(`invalid blob size ${g.size}`)
  if (!isValidChunkSize(g.chunkSize)) {
    throw fail(`chunk size ${g.chunkSize} outside ${MIN_CHUNK_SIZE_BYTES}..${MAX_CHUNK_SIZE_BYTES}`)
  }
}

/** Checks every field of an in-memory map (one built by hand or received as JSON is not trusted either). */
export function validateChunkMap(map: ChunkMap, limits: DecodeLimits = {}): ChunkMap {
  const fail = (m: string): Error => new InvalidChunkMapError(m)
  checkGeometry(map, fail)
  const want = chunkCount(map.size, map.chunkSize)
  const max = limits.maxChunks ?? DEFAULT_MAX_CHUNKS
  if (want > max) throw fail(`chunk map has ${want} chunks, limit ${max}`)
  if (!Array.isArray(map.chunks) || map.chunks.length !== want) {
    throw fail(`chunk map lists ${map.chunks?.length} chunks, want ${want}`)
  }
  for (const c of map.chunks) if (typeof c !== 'string' || !isChunkDigest(c)) throw fail('invalid chunk digest')
  return map
}

export function encodeChunkMap(map: ChunkMap): Uint8Array {
  validateChunkMap(map, { maxChunks: Number.MAX_SAFE_INTEGER })
  const w = new Writer(encodedChunkMapLength(map.digest, map.chunks.length))
    .u8(CHUNK_MAP_FORMAT_VERSION)
    .digest(map.digest)
    .u64(map.size)
    .u32(map.chunkSize)
    .u32(map.chunks.length)
  for (const c of map.chunks) w.raw(Buffer.from(c.slice('sha256:'.length), 'hex'))
  return w.done()
}

function encodedChunkMapLength(digest: Digest, chunks: number): number {
  return 1 + encodedDigestLength(digest) + 8 + 4 + 4 + chunks * CHUNK_DIGEST_BYTES
}

/** The largest encoded map `decodeChunkMap` accepts under `limits`; callers bound their reads with it. */
export function maxEncodedChunkMapBytes(limits: DecodeLimits = {}): number {
  return 1 + 1 + 64 + 8 + 4 + 4 + (limits.maxChunks ?? DEFAULT_MAX_CHUNKS) * CHUNK_DIGEST_BYTES
}

/** Decodes and fully validates untrusted bytes; the size limit is checked before anything is parsed. */
export function decodeChunkMap(bytes: Uint8Array, limits: DecodeLimits = {}): ChunkMap {
  const fail = (m: string): Error => new InvalidChunkMapError(m)
  const maxChunks = limits.maxChunks ?? DEFAULT_MAX_CHUNKS
  if (bytes.byteLength > maxEncodedChunkMapBytes({ maxChunks })) throw fail(`chunk map of ${bytes.byteLength} bytes`)
  const r = new Reader(bytes, fail)
  const version = r.u8('version')
  if (version !== CHUNK_MAP_FORMAT_VERSION) throw fail(`unknown chunk map version ${version}`)
  const digest = r.digest('blob digest')
  const size = r.u64('size')
  const chunkSize = r.u32('chunk size')
  checkGeometry({ digest, size, chunkSize }, fail)
  const count = r.u32('chunk count')
  const want = chunkCount(size, chunkSize)
  if (count !== want) throw fail(`chunk map lists ${count} chunks, want ${want}`)
  if (count > maxChunks) throw fail(`chunk map has ${count} chunks, limit ${maxChunks}`)
  if (r.remaining !== count * CHUNK_DIGEST_BYTES) throw fail('chunk list length does not match chunk count')
  const chunks: string[] = new Array(count)
  for (let i = 0; i < count; i++) chunks[i] = r.chunkDigest('chunk digest')
  r.end()
  return { digest, size, chunkSize, chunks }
}
