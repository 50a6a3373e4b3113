import type { Readable } from 'node:stream'
import { expect } from 'vitest'
import { type Digest, digestOf } from '../../../shared/oci/digest.ts'
import type { ContentStore } from '../../../shared/store/index.ts'

/** Deterministic pseudo-random bytes (xorshift32): no 256-byte period to hide an offset bug. */
export function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  let x = Math.imul(seed + 1, 2654435761) >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

export function blobOf(size: number, seed: number): { bytes: Uint8Array; digest: Digest } {
  const bytes = bytesOf(size, seed)
  return { bytes, digest: digestOf(bytes) }
}

export async function collect(stream: Readable): Promise<Uint8Array> {
  const parts: Buffer[] = []
  for await (const part of stream) parts.push(part as Buffer)
  return new Uint8Array(Buffer.concat(parts))
}

/** Byte equality that names the first differing offset instead of dumping both arrays. */
export function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength)
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)
  if (a.equals(e)) return
  let i = 0
  while (i < a.length && i < e.length && a[i] === e[i]) i++
  expect.fail(`bytes differ: lengths ${a.length} vs ${e.length}, first difference at offset ${i}`)
}

/** Stores a complete blob through the sequential path, in `piece`-sized appends. */
export async function putBlob(
  store: ContentStore,
  blob: { bytes: Uint8Array; digest: Digest },
  opts: { chunkSize?: number; piece?: number; mediaType?: string } = {},
): Promise<void> {
  const partial = await store.openPartial(blob.digest, {
    size: blob.bytes.byteLength,
    chunkSize: opts.chunkSize ?? 1000,
  })
  const piece = opts.piece ?? 777
  for (let off = 0; off < blob.bytes.byteLength; off += piece) {
    await partial.append(blob.bytes.subarray(off, off + piece))
  }
  await partial.commit(opts.mediaType === undefined ? {} : { mediaType: opts.mediaType })
}

export function chunkOf(bytes: Uint8Array, index: number, chunkSize: number): Uint8Array {
  return bytes.subarray(index * chunkSize, Math.min(bytes.byteLength, (index + 1) * chunkSize))
}

/** A clock that moves one millisecond per call, so every access has its own time. */
export function fakeClock(start = 1_000_000): () => number {
  let t = start
  return () => t++
}
