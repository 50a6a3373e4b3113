import { createHash, type Hash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { type Digest, Digester } from '../oci/digest.ts'
import { DigestMismatchError, SizeMismatchError } from '../oci/errors.ts'
import { type ChunkGeometry, type ChunkMap, chunkRange, isValidChunkSize } from './chunk-map.ts'
import { InvalidChunkMapError } from './errors.ts'

export interface CompletedChunk {
  readonly index: number
  /** `sha256:<hex>` of the chunk. */
  readonly chunk: string
}

/**
 * Cuts a byte stream into chunks and hashes each chunk and the whole blob in one pass. `update` reports each
 * chunk the moment its last byte arrives, which is when a seeder signs its attestation; `finish` checks the
 * whole-blob digest, so a map it returns describes bytes that really are the blob.
 */
export class ChunkMapBuilder {
  readonly digest: Digest
  readonly chunkSize: number
  readonly #whole: Digester | undefined
  readonly #chunks: string[] = []
  #current: Hash = createHash('sha256')
  #inChunk = 0
  #bytes = 0

  /**
   * `checkDigest: false`: the whole-blob digest is not computed here, because the caller checks the same bytes
   * against it before it trusts the map (a store's commit does): `finish` then checks only the size, and the map
   * it returns must not be used before that check has passed. Saves one SHA-256 pass over every byte.
   */
  constructor(digest: Digest, chunkSize: number, opts: { checkDigest?: boolean } = {}) {
    if (!isValidChunkSize(chunkSize)) throw new InvalidChunkMapError(`invalid chunk size ${chunkSize}`)
    this.digest = digest
    this.chunkSize = chunkSize
    this.#whole = opts.checkDigest === false ? undefined : Digester.for(digest)
  }

  /** Bytes consumed so far. */
  get bytes(): number {
    return this.#bytes
  }

  update(data: Uint8Array): CompletedChunk[] {
    const done: CompletedChunk[] = []
    this.#whole?.update(data)
    this.#bytes += data.byteLength
    let at = 0
    while (at < data.byteLength) {
      const take = Math.min(this.chunkSize - this.#inChunk, data.byteLength - at)
      this.#current.update(data.subarray(at, at + take))
      this.#inChunk += take
      at += take
      if (this.#inChunk === this.chunkSize) done.push(this.#closeChunk())
    }
    return done
  }

  /**
   * Closes the blob: returns the trailing short chunk (if any) and the map. Throws DigestMismatchError when the
   * bytes are not the blob, SizeMismatchError when `expectedSize` is given and differs.
   */
  finish(expectedSize?: number): { last: CompletedChunk | undefined; map: ChunkMap } {
    const last = this.#inChunk > 0 ? this.#closeChunk() : undefined
    const size = this.#bytes
    if (expectedSize !== undefined && size !== expectedSize) throw new SizeMismatchError(expectedSize, size)
    if (this.#whole !== undefined) {
      const actual = this.#whole.digest()
      if (actual !== this.digest) throw new DigestMismatchError(this.digest, actual)
    }
    return {
      last,
      map: { digest: this.digest, size, chunkSize: this.chunkSize, chunks: Object.freeze([...this.#chunks]) },
    }
  }

  #closeChunk(): CompletedChunk {
    const chunk = `sha256:${this.#current.digest('hex')}`
    const index = this.#chunks.push(chunk) - 1
    this.#current = createHash('sha256')
    this.#inChunk = 0
    return { index, chunk }
  }
}

/**
 * Computes the chunk map of a blob from its bytes, verifying them against `digest` (DigestMismatchError) so the
 * map can be trusted like a signed one.
 */
export async function computeChunkMap(
  source: AsyncIterable<Uint8Array> | Readable,
  digest: Digest,
  chunkSize: number,
  options: { signal?: AbortSignal; expectedSize?: number } = {},
): Promise<ChunkMap> {
  const builder = new ChunkMapBuilder(digest, chunkSize)
  options.signal?.throwIfAborted()
  for await (const data of source as AsyncIterable<Uint8Array>) {
    options.signal?.throwIfAborted()
    if (!(data instanceof Uint8Array)) throw new TypeError('computeChunkMap needs a byte stream')
    builder.update(data)
    // Fail early on an oversized stream instead of hashing the surplus.
    if (options.expectedSize !== undefined && builder.bytes > options.expectedSize) {
      throw new SizeMismatchError(options.expectedSize, builder.bytes)
    }
  }
  return builder.finish(options.expectedSize).map
}

/** `sha256:<hex>` of a chunk's bytes. */
export function chunkDigestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/**
 * Checks bytes received for chunk `index` against the trusted chunk digest `expected` (from a verified map or
 * attestation): length first, so nothing is hashed for a chunk of the wrong size.
 */
export function verifyChunk(geometry: ChunkGeometry, index: number, expected: string, bytes: Uint8Array): void {
  const { start, end } = chunkRange(geometry, index)
  if (bytes.byteLength !== end - start) throw new SizeMismatchError(end - start, bytes.byteLength)
  const actual = chunkDigestOf(bytes)
  if (actual !== expected) throw new DigestMismatchError(expected, actual)
}
