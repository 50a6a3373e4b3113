import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import {
  ChunkMapBuilder,
  chunkDigestOf,
  chunkRange,
  computeChunkMap,
  decodeChunkMap,
  encodeChunkMap,
  InvalidChunkMapError,
  MIN_CHUNK_SIZE_BYTES,
  verifyChunk,
} from '../../../shared/chunks/index.ts'
import { digestOf } from '../../../shared/oci/digest.ts'
import { DigestMismatchError, SizeMismatchError } from '../../../shared/oci/errors.ts'

const KIB = 1024
const CS = MIN_CHUNK_SIZE_BYTES // 64 KiB keeps test blobs small

/** A deterministic, non-repeating test blob. */
function blob(size: number): Uint8Array {
  const out = new Uint8Array(size)
  let x = 2463534242
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size)
}

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

describe('computeChunkMap', () => {
  const bytes = blob(300 * KIB + 123)
  const digest = digestOf(bytes)
  // Computed independently from slices of the blob.
  const expected = [0, 1, 2, 3, 4].map((i) => sha256(bytes.subarray(i * CS, Math.min((i + 1) * CS, bytes.byteLength))))

  it('matches a known small blob', async () => {
    const hello = new TextEncoder().encode('hello')
    const map = await computeChunkMap(pieces(hello, 2), digestOf(hello), CS)
    expect(map).toEqual({
      digest: 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
      size: 5,
      chunkSize: CS,
      chunks: ['sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'],
    })
  })

  it.each([1, 1000, CS - 1, CS, CS + 1, 300 * KIB + 123])(
    'cuts a 300 KiB blob into 64 KiB chunks whatever the read size (%i)',
    async (readSize) => {
      const map = await computeChunkMap(pieces(bytes, readSize), digest, CS, { expectedSize: bytes.byteLength })
      expect(map.size).toBe(bytes.byteLength)
      expect(map.chunks).toEqual(expected)
      expect(decodeChunkMap(encodeChunkMap(map))).toEqual(map)
    },
  )

  it('reads a node Readable and handles the empty blob', async () => {
    const map = await computeChunkMap(Readable.from([Buffer.from(bytes)]), digest, CS)
    expect(map.chunks).toEqual(expected)
    const empty = await computeChunkMap(Readable.from([]), digestOf(new Uint8Array(0)), CS)
    expect(empty).toMatchObject({ size: 0, chunks: [] })
  })

  it('hashes sha512 blobs as a whole with sha512 and their chunks with sha256', async () => {
    const map = await computeChunkMap(pieces(bytes, 4096), digestOf(bytes, 'sha512'), CS)
    expect(map.chunks).toEqual(expected)
  })

  it('throws DigestMismatchError when the bytes are not the blob', async () => {
    const other = bytes.slice()
    other[12345]! ^= 1
    await expect(computeChunkMap(pieces(other, 8192), digest, CS)).rejects.toBeInstanceOf(DigestMismatchError)
  })

  it('throws SizeMismatchError on a short or long stream when the size is known', async () => {
    await expect(
      computeChunkMap(pieces(bytes.subarray(1), 8192), digest, CS, { expectedSize: bytes.byteLength }),
    ).rejects.toBeInstanceOf(SizeMismatchError)
    await expect(
      computeChunkMap(pieces(bytes, 8192), digest, CS, { expectedSize: bytes.byteLength - 1 }),
    ).rejects.toBeInstanceOf(SizeMismatchError)
  })

  it('refuses an invalid chunk size and honours an aborted signal', async () => {
    await expect(computeChunkMap(pieces(bytes, 8192), digest, 1000)).rejects.toBeInstanceOf(InvalidChunkMapError)
    const ac = new AbortController()
    ac.abort()
    await expect(computeChunkMap(pieces(bytes, 8192), digest, CS, { signal: ac.signal })).rejects.toThrow(/abort/i)
  })
})

describe('ChunkMapBuilder', () => {
  it('reports each chunk as soon as its last byte arrives, so a seeder can attest it at once', () => {
    const bytes = blob(2 * CS + 10)
    const b = new ChunkMapBuilder(digestOf(bytes), CS)
    expect(b.update(bytes.subarray(0, CS - 1))).toEqual([])
    expect(b.update(bytes.subarray(CS - 1, CS))).toEqual([{ index: 0, chunk: sha256(bytes.subarray(0, CS)) }])
    expect(b.update(bytes.subarray(CS, 2 * CS + 5)).map((c) => c.index)).toEqual([1])
    expect(b.update(bytes.subarray(2 * CS + 5))).toEqual([])
    const { last, map } = b.finish(bytes.byteLength)
    expect(last).toEqual({ index: 2, chunk: sha256(bytes.subarray(2 * CS)) })
    expect(map.chunks).toHaveLength(3)
  })

  it('reports several chunks from one large write', () => {
    const bytes = blob(3 * CS)
    const b = new ChunkMapBuilder(digestOf(bytes), CS)
    expect(b.update(bytes).map((c) => c.index)).toEqual([0, 1, 2])
    expect(b.finish().last).toBeUndefined()
  })

  it('checks the whole-blob digest unless its caller checks the same bytes elsewhere (checkDigest: false)', () => {
    const bytes = blob(2 * CS + 10)
    const wrong = digestOf(blob(7))
    const checking = new ChunkMapBuilder(wrong, CS)
    checking.update(bytes)
    expect(() => checking.finish(bytes.byteLength)).toThrow(DigestMismatchError)
    const chunksOnly = new ChunkMapBuilder(wrong, CS, { checkDigest: false })
    chunksOnly.update(bytes)
    expect(chunksOnly.bytes).toBe(bytes.byteLength)
    expect(() => chunksOnly.finish(bytes.byteLength + 1)).toThrow(SizeMismatchError)
    const right = new ChunkMapBuilder(digestOf(bytes), CS, { checkDigest: false })
    right.update(bytes)
    const full = new ChunkMapBuilder(digestOf(bytes), CS)
    full.update(bytes)
    expect(right.finish(bytes.byteLength).map).toEqual(full.finish(bytes.byteLength).map)
  })
})

describe('verifyChunk', () => {
  const bytes = blob(CS + 100)
  const geometry = { size: bytes.byteLength, chunkSize: CS }

  it('accepts the right bytes and rejects wrong bytes or a wrong length', () => {
    const second = bytes.subarray(chunkRange(geometry, 1).start)
    verifyChunk(geometry, 1, chunkDigestOf(second), second)
    const bad = second.slice()
    bad[0]! ^= 1
    expect(() => verifyChunk(geometry, 1, chunkDigestOf(second), bad)).toThrow(DigestMismatchError)
    expect(() => verifyChunk(geometry, 0, chunkDigestOf(second), second)).toThrow(SizeMismatchError)
  })
})
