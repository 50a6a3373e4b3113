/**
 * What the store engine needs from a storage medium. The engine (store.ts, partial.ts) owns every rule:
 * quota, pins, LRU, chunk bookkeeping, hashing; a backend only moves bytes and index records.
 */
import type { Digest } from '../oci/digest.ts'

/** Positional reads; several may be in flight at once. */
export interface RandomAccessFile {
  /** Reads up to `into.byteLength` bytes at `position`; returns how many (0 at end of file). */
  read(into: Uint8Array, position: number): Promise<number>
  close(): Promise<void>
}

export interface WritableFile extends RandomAccessFile {
  /** Writes all of `bytes` at `position`. */
  write(bytes: Uint8Array, position: number): Promise<void>
  /** Writes the pieces back to back from `position` (one gathered write where the medium has one). */
  writev(pieces: readonly Uint8Array[], position: number): Promise<void>
  /** Makes written data durable (checkpoints). */
  datasync(): Promise<void>
}

export interface BlobMeta {
  readonly size: number
  readonly mediaType?: string
  readonly storedAt: number
  readonly lastAccess: number
}

export interface PartialMeta {
  readonly size: number
  readonly chunkSize: number
  /** Encoded Bitfield, base64: chunks whose bytes were written (see `synced`) before it was recorded. */
  readonly written: string
  /** Sequential (append) prefix, written before it was recorded. */
  readonly prefix: number
  readonly createdAt: number
  /**
   * Whether the bytes claimed were synced to disk before the record was written. When not, the claim holds only
   * while the kernel that buffered them runs: a process crash keeps the page cache, a power loss does not.
   */
  readonly synced: boolean
  /** The kernel boot the record was written in, when known. */
  readonly bootId?: string
}

export interface LoadedIndex {
  readonly blobs: ReadonlyMap<Digest, BlobMeta>
  readonly partials: ReadonlyMap<Digest, PartialMeta>
  /**
   * Identifies this boot of the machine (Linux: /proc/sys/kernel/random/boot_id). When known, partial progress is
   * recorded without syncing, and trusted on resume only if synced or recorded in the same boot.
   */
  readonly bootId?: string
}

export interface StoreBackend {
  /** Index and files, reconciled. */
  load(): Promise<LoadedIndex>
  /** undefined when the blob's file is missing. */
  openBlob(digest: Digest): Promise<RandomAccessFile | undefined>
  /** Removes the blob's file and index record. */
  removeBlob(digest: Digest): Promise<void>
  /** Batched lastAccess updates. */
  putBlobMetas(entries: readonly (readonly [Digest, BlobMeta])[]): Promise<void>
  /**
   * Opens the partial's file: resumes the existing one when `resume`, else starts an empty one.
   * `fresh` tells whether the bytes on disk (if resumed) are gone and bookkeeping must start over.
   */
  openPartialFile(digest: Digest, size: number, resume: boolean): Promise<{ file: WritableFile; fresh: boolean }>
  putPartialMeta(digest: Digest, meta: PartialMeta): Promise<void>
  /** Removes the partial's file and index record. */
  removePartial(digest: Digest): Promise<void>
  /** Durably moves the verified partial into place and swaps its index record for `meta`, atomically. */
  commitPartial(digest: Digest, file: WritableFile, meta: BlobMeta): Promise<void>
  /** Waits for queued index writes. Does not close a database it does not own. */
  stop(): Promise<void>
}
