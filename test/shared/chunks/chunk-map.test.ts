import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type ChunkMap,
  chunkCount,
  chunkRange,
  DEFAULT_CHUNK_SIZE_BYTES,
  decodeChunkMap,
  encodeChunkMap,
  InvalidChunkIndexError,
  InvalidChunkMapError,
  MAX_CHUNK_SIZE_BYTES,
  MIN_CHUNK_SIZE_BYTES,
  maxEncodedChunkMapBytes,
} from '../../../shared/chunks/index.ts'
import { type Digest, digestOf } from '../../../shared/oci/digest.ts'

const hex = (c: string, n = 64): string => c.repeat(n)
const MIB = 1024 * 1024

function sampleMap(over: Partial<ChunkMap> = {}): ChunkMap {
  return {
    digest: `sha256:${hex('a')}` as Digest,
    size: 10 * MIB + 5,
    chunkSize: 4 * MIB,
    chunks: [`sha256:${hex('1')}`, `sha256:${hex('2')}`, `sha256:${hex('3')}`],
    ...over,
  }
}

describe('chunk geometry', () => {
  it('counts chunks, with no chunk for an empty blob and a short last chunk', () => {
    expect(DEFAULT_CHUNK_SIZE_BYTES).toBe(1 * MIB)
    expect(chunkCount(0, 4 * MIB)).toBe(0)
    expect(chunkCount(1, 4 * MIB)).toBe(1)
    expect(chunkCount(4 * MIB, 4 * MIB)).toBe(1)
    expect(chunkCount(4 * MIB + 1, 4 * MIB)).toBe(2)
  })

  it('gives each chunk its byte range, end exclusive', () => {
    const g = { size: 10 * MIB + 5, chunkSize: 4 * MIB }
    expect(chunkRange(g, 0)).toEqual({ start: 0, end: 4 * MIB })
    expect(chunkRange(g, 2)).toEqual({ start: 8 * MIB, end: 10 * MIB + 5 })
    expect(chunkRange(sampleMap(), 1)).toEqual({ start: 4 * MIB, end: 8 * MIB })
    for (const bad of [-1, 3, 1.5, Number.NaN]) expect(() => chunkRange(g, bad)).toThrow(InvalidChunkIndexError)
  })
})

describe('encodeChunkMap / decodeChunkMap', () => {
  it('round-trips, and the encoding is the documented fixed layout', () => {
    const map = sampleMap()
    const bytes = encodeChunkMap(map)
    expect(bytes.byteLength).toBe(1 + 1 + 32 + 8 + 4 + 4 + 3 * 32)
    expect(bytes[0]).toBe(1) // format version
    expect(bytes[1]).toBe(1) // sha256
    expect(Buffer.from(bytes.subarray(2, 34)).toString('hex')).toBe(hex('a'))
    expect(new DataView(bytes.buffer).getBigUint64(34)).toBe(BigInt(10 * MIB + 5))
    expect(new DataView(bytes.buffer).getUint32(42)).toBe(4 * MIB)
    expect(new DataView(bytes.buffer).getUint32(46)).toBe(3)
    expect(decodeChunkMap(bytes)).toEqual(map)
  })

  it('is deterministic: equal maps give equal bytes whatever the object key order', () => {
    const a = sampleMap()
    const b: ChunkMap = { chunks: [...a.chunks], chunkSize: a.chunkSize, size: a.size, digest: a.digest }
    expect(encodeChunkMap(b)).toEqual(encodeChunkMap(a))
  })

  it('round-trips a sha512 blob and an empty blob', () => {
    const sha512 = sampleMap({ digest: `sha512:${hex('b', 128)}` as Digest })
    expect(decodeChunkMap(encodeChunkMap(sha512))).toEqual(sha512)
    const empty = sampleMap({ digest: digestOf(new Uint8Array(0)), size: 0, chunks: [] })
    expect(decodeChunkMap(encodeChunkMap(empty))).toEqual(empty)
  })

  it.each([
    ['a bad digest', { digest: 'sha256:xyz' as Digest }],
    ['a negative size', { size: -1 }],
    ['a fractional size', { size: 1.5 }],
    ['a chunk size below 64 KiB', { chunkSize: MIN_CHUNK_SIZE_BYTES - 1, size: 10, chunks: [`sha256:${hex('1')}`] }],
    ['a chunk size above 64 MiB', { chunkSize: MAX_CHUNK_SIZE_BYTES + 1 }],
    ['too few chunks', { chunks: [`sha256:${hex('1')}`] }],
    ['an upper-case chunk digest', { chunks: [`sha256:${hex('A')}`, `sha256:${hex('2')}`, `sha256:${hex('3')}`] }],
    ['a sha512 chunk digest', { chunks: [`sha512:${hex('1', 128)}`, `sha256:${hex('2')}`, `sha256:${hex('3')}`] }],
  ])('refuses to encode a map with %s', (_name, over) => {
    expect(() => encodeChunkMap(sampleMap(over))).toThrow(InvalidChunkMapError)
  })

  function mutate(bytes: Uint8Array, f: (v: DataView) => void): Uint8Array {
    const copy = bytes.slice()
    f(new DataView(copy.buffer))
    return copy
  }

  it.each<[string, (v: DataView) => void]>([
    ['an unknown version', (v) => v.setUint8(0, 2)],
    ['an unknown digest algorithm', (v) => v.setUint8(1, 9)],
    ['a chunk count that disagrees with size', (v) => v.setUint32(46, 4)],
    ['a size that disagrees with the chunk count', (v) => v.setBigUint64(34, BigInt(20 * MIB))],
    ['a size beyond 2^53', (v) => v.setBigUint64(34, 2n ** 60n)],
    ['a chunk size below the minimum', (v) => v.setUint32(42, 1024)],
  ])('rejects %s', (_name, f) => {
    expect(() => decodeChunkMap(mutate(encodeChunkMap(sampleMap()), f))).toThrow(InvalidChunkMapError)
  })

  it('rejects truncated and padded input', () => {
    const bytes = encodeChunkMap(sampleMap())
    for (let n = 0; n < bytes.byteLength; n += 7) {
      expect(() => decodeChunkMap(bytes.subarray(0, n))).toThrow(InvalidChunkMapError)
    }
    const padded = new Uint8Array(bytes.byteLength + 1)
    padded.set(bytes)
    expect(() => decodeChunkMap(padded)).toThrow(InvalidChunkMapError)
  })

  it('enforces maxChunks, and rejects oversized input before parsing it', () => {
    const map = sampleMap()
    expect(() => decodeChunkMap(encodeChunkMap(map), { maxChunks: 2 })).toThrow(/limit 2/)
    expect(decodeChunkMap(encodeChunkMap(map), { maxChunks: 3 })).toEqual(map)
    const huge = new Uint8Array(maxEncodedChunkMapBytes({ maxChunks: 3 }) + 1)
    expect(() => decodeChunkMap(huge, { maxChunks: 3 })).toThrow(/bytes/)
  })

  const arbMap: fc.Arbitrary<ChunkMap> = fc
    .record({
      algorithm: fc.constantFrom('sha256', 'sha512'),
      seed: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      chunkSize: fc.integer({ min: MIN_CHUNK_SIZE_BYTES, max: MAX_CHUNK_SIZE_BYTES }),
      count: fc.integer({ min: 0, max: 40 }),
      tail: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .chain(({ algorithm, seed, chunkSize, count, tail }) => {
      // Any size whose chunk count is `count`: a full prefix plus a last chunk of 1..chunkSize bytes.
      const size = count === 0 ? 0 : (count - 1) * chunkSize + 1 + Math.floor(tail * (chunkSize - 1))
      return fc
        .array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { minLength: count, maxLength: count })
        .map((hashes) => ({
          digest: digestOf(seed, algorithm as 'sha256' | 'sha512'),
          size,
          chunkSize,
          chunks: hashes.map((h) => `sha256:${Buffer.from(h).toString('hex')}`),
        }))
    })

  it('property: decode(encode(m)) = m and encoding is a function of the map', () => {
    fc.assert(
      fc.property(arbMap, (map) => {
        const bytes = encodeChunkMap(map)
        const back = decodeChunkMap(bytes)
        expect(back).toEqual(map)
        expect(encodeChunkMap(back)).toEqual(bytes)
      }),
    )
  })

  it('property: any byte string either fails with InvalidChunkMapError or is the canonical encoding of its map', () => {
    fc.assert(
      fc.property(
        arbMap,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.nat({ max: 4 }),
        (map, edits, cut) => {
          const bytes = encodeChunkMap(map).slice()
          for (const [at, value] of edits) bytes[at % bytes.byteLength] = value
          const input = bytes.subarray(0, bytes.byteLength - cut)
          let decoded: ChunkMap
          try {
            decoded = decodeChunkMap(input)
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidChunkMapError)
            return
          }
          expect(encodeChunkMap(decoded)).toEqual(input)
        },
      ),
    )
  })
})
