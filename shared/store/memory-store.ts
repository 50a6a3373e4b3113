import type { Digest } from '../oci/digest.ts'
import type { BlobMeta, LoadedIndex, PartialMeta, RandomAccessFile, StoreBackend, WritableFile } from './backend.ts'
import type { StoreOptions } from './index.ts'
import { BlobStore } from './store.ts'

class MemoryFile implements WritableFile {
  readonly #bytes: Uint8Array

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes
  }

  async read(into: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(into.byteLength, this.#bytes.byteLength - position))
    into.set(this.#bytes.subarray(position, position + n))
    return n
  }

  async write(bytes: Uint8Array, position: number): Promise<void> {
    if (position + bytes.byteLength > this.#bytes.byteLength) throw new RangeError('write past the end of the blob')
    this.#bytes.set(bytes, position)
  }

  async writev(pieces: readonly Uint8Array[], position: number): Promise<void> {
    let at = position
    for (const piece of pieces) {
      await this.write(piece, at)
      at += piece.byteLength
    }
  }

  async datasync(): Promise<void> {}

  async close(): Promise<void> {}
}

/** Bytes in Maps; nothing survives the process, so there is nothing to reconcile or persist. */
class MemoryBackend implements StoreBackend {
  readonly #blobs = new Map<Digest, Uint8Array>()
  readonly #partials = new Map<Digest, Uint8Array>()

  async load(): Promise<LoadedIndex> {
    return { blobs: new Map(), partials: new Map(), bootId: 'memory' }
  }

  async openBlob(digest: Digest): Promise<RandomAccessFile | undefined> {
    const bytes = this.#blobs.get(digest)
    return bytes === undefined ? undefined : new MemoryFile(bytes)
  }

  async removeBlob(digest: Digest): Promise<void> {
    this.#blobs.delete(digest)
  }

  async putBlobMetas(_entries: readonly (readonly [Digest, BlobMeta])[]): Promise<void> {}

  async openPartialFile(
    digest: Digest,
    size: number,
    resume: boolean,
  ): Promise<{ file: WritableFile; fresh: boolean }> {
    const existing = resume ? this.#partials.get(digest) : undefined
    if (existing !== undefined && existing.byteLength === size) return { file: new MemoryFile(existing), fresh: false }
    const bytes = new Uint8Array(size)
    this.#partials.set(digest, bytes)
    return { file: new MemoryFile(bytes), fresh: true }
  }

  async putPartialMeta(_digest: Digest, _meta: PartialMeta): Promise<void> {}

  async removePartial(digest: Digest): Promise<void> {
    this.#partials.delete(digest)
  }

  async commitPartial(digest: Digest, _file: WritableFile, _meta: BlobMeta): Promise<void> {
    const bytes = this.#partials.get(digest)
    if (bytes === undefined) throw new Error(`no partial bytes for ${digest}`)
    this.#partials.delete(digest)
    this.#blobs.set(digest, bytes)
  }

  async stop(): Promise<void> {}
}

/** The same rules as the on-disk store, with bytes in memory: for other modules' unit tests. */
export class MemoryContentStore extends BlobStore {
  constructor(opts: StoreOptions = {}) {
    // Nothing outlives the process, so progress never needs syncing: one boot, always.
    super(new MemoryBackend(), { blobs: new Map(), partials: new Map(), bootId: 'memory' }, opts)
  }
}
