/**
 * The content store: complete blobs, in-progress (partial) downloads, manifests and tags.
 * Two implementations pass one conformance suite: files + a `level` index (`openFsStore`) and memory
 * (`MemoryContentStore`, `MemoryManifestCache`, for other modules' unit tests).
 */
import type { Readable } from 'node:stream'
import type { Bitfield } from '../chunks/bitfield.ts'
import type { HashPool } from '../hashing/index.ts'
import type { Digest } from '../oci/digest.ts'

export interface BlobInfo {
  readonly digest: Digest
  readonly size: number
  readonly mediaType?: string
  /** ms since the epoch */
  readonly storedAt: number
  /** ms since the epoch; updated by read() (persisted lazily) */
  readonly lastAccess: number
}

/** Bytes [start, end): end is EXCLUSIVE. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

/** The read side of the chunk bitfield; `clone()` it for a mutable copy. */
export type ReadonlyBitfield = Pick<
  Bitfield,
  'length' | 'count' | 'complete' | 'has' | 'firstMissing' | 'indexes' | 'encode' | 'clone'
>

/** Why a complete blob left the store. */
export type RemovalReason = 'evicted' | 'deleted'

export interface StoreOptions {
  /** Quota in bytes over complete blobs and partial reservations; 0 or Infinity (default) = unlimited. */
  readonly maxBytes?: number
  /** Called synchronously when a complete blob leaves the store (so the swarm stops providing it). */
  readonly onEvict?: (digest: Digest, reason: RemovalReason) => void
  /** Clock for storedAt/lastAccess; tests inject one. */
  readonly now?: () => number
  /** Where partials hash their whole blob (default: inline, on the thread that writes). */
  readonly hashing?: HashPool
}

export interface PartialSummary {
  readonly digest: Digest
  readonly size: number
  readonly chunkSize: number
  readonly prefixBytes: number
  readonly chunksWritten: number
  /** true when a PartialBlob object for it is open in this process */
  readonly open: boolean
}

export interface ContentStore {
  /** Complete blobs only. */
  stat(digest: Digest): Promise<BlobInfo | undefined>
  /**
   * A complete blob's bytes (all, or a range; InvalidRangeError when outside the blob). Pins the blob until the
   * stream closes, errors or is destroyed: consume or destroy it. Updates lastAccess.
   */
  read(digest: Digest, range?: ByteRange): Promise<{ info: BlobInfo; stream: Readable } | undefined>
  /**
   * Bytes [start, end) of a complete blob in one buffer (InvalidRangeError when outside the blob), read at their
   * offset on a file handle the store keeps open a short while: the way to read many small ranges of one blob
   * (chunks served to peers) without opening the file and streaming each. Read into `into` when given (exactly the
   * range's length). Updates lastAccess.
   */
  readRange(digest: Digest, range: ByteRange, into?: Uint8Array): Promise<Uint8Array | undefined>
  /**
   * Creates, or resumes after a restart, the download of `digest`. Reserves `size` bytes of quota up front,
   * evicting least-recently-used unpinned complete blobs if needed; StoreFullError when it cannot.
   * While one is open in this process, every call returns the same object (PartialConflictError when `size`
   * or `chunkSize` differ). Resuming with another chunkSize keeps the bytes on disk and re-derives the bitfield;
   * resuming with another size starts over. BlobExistsError if the blob is already complete.
   */
  openPartial(digest: Digest, opts: { size: number; chunkSize: number; signal?: AbortSignal }): Promise<PartialBlob>
  /** The partial open in this process for `digest`, if any (to join a download already under way). */
  getPartial(digest: Digest): PartialBlob | undefined
  /** Partial downloads on disk, open or waiting to be resumed. */
  listPartials(): Promise<PartialSummary[]>
  /** false when absent; BlobPinnedError while pinned. Complete blobs only (discard a partial instead). */
  delete(digest: Digest): Promise<boolean>
  list(): AsyncIterable<BlobInfo>
  /** `bytes` includes partial reservations; `maxBytes` is Infinity when unlimited. */
  usage(): { bytes: number; blobs: number; maxBytes: number }
  /** Reference-counted; pinned blobs are never evicted nor deleted. The returned function unpins (once). */
  pin(digest: Digest): () => void
  /** Idempotent. Flushes access times and partial progress; open partials move to state 'closed'. */
  stop(): Promise<void>
}

export type PartialState = 'open' | 'committing' | 'committed' | 'discarded' | 'closed'

/**
 * An in-progress download. Progress (bitfield, sequential prefix) is recorded in the index as chunks land, so a
 * restart resumes it: without a sync while the kernel's boot id is known (the page cache survives a process
 * crash; after a reboot only synced records are trusted), else with a sync at most once per second; always with
 * a sync at close.
 */
export interface PartialBlob {
  readonly digest: Digest
  readonly size: number
  readonly chunkSize: number
  readonly chunkCount: number
  readonly state: PartialState
  /** Chunks whose bytes are on disk. Live view: do not hold on to it across awaits if you need a snapshot. */
  readonly written: ReadonlyBitfield
  /** Contiguous bytes from offset 0 that are on disk (servable to clients). */
  readonly prefixBytes: number
  /** Where the next append() lands: prefixBytes when opened, then advanced by each append. */
  readonly appendOffset: number
  /**
   * Sequential writer (origin path): writes at appendOffset, sets chunk bits as chunk ends are reached.
   * Calls are queued in order; if one fails, the ones queued behind it reject too (restart at appendOffset).
   * Bytes of chunks already written are not overwritten. SizeMismatchError past the end of the blob.
   * `at`: the offset the bytes start at. It may be past appendOffset when every byte in between is on disk already
   * (chunks another writer put there, e.g. up to prefixBytes): the append then continues from `at`. Anything else
   * is PartialStateError. A list of pieces is one append of their bytes in order, written without joining them.
   * `transfer`: the caller gives the pieces up (nothing reads them once the append resolves, and no other view shares
   * their memory past their ends): the whole-blob hash may take their memory to its thread, leaving them empty.
   */
  append(
    bytes: Uint8Array | readonly Uint8Array[],
    opts?: { signal?: AbortSignal; at?: number; transfer?: boolean },
  ): Promise<void>
  /**
   * Positional write of one whole chunk (swarm path; the caller verified its hash). Its length must be the
   * chunk's (the last one is shorter), else SizeMismatchError. Writing a chunk already written is a no-op.
   * `lent`: the bytes may be sent as they are to followers standing at the chunk's offset (instead of read back
   * from the file); when any did, `lent` is called before the write resolves with a promise that settles once
   * nothing holds them, and the caller must not reuse or free them before. Without it the bytes are free again
   * when the write resolves.
   */
  writeChunk(
    index: number,
    bytes: Uint8Array,
    opts?: { signal?: AbortSignal; lent?: (released: Promise<void>) => void },
  ): Promise<void>
  /** Bytes already on disk only (else RangeNotWrittenError). Valid while state is 'open' or 'committing'. */
  read(range: ByteRange): Readable
  /**
   * Streams `range` (default: the whole blob), waiting for bytes to land; ends at range end, even across
   * commit. Errors with PartialStateError if the partial is discarded or closed first.
   * `holdLastByte`: the range's last byte comes only once the commit has checked the whole-blob digest (not once
   * the blob is durable; a commit that fails after the check holds it again). A client that has every byte of a
   * Content-Length response takes it as complete, so bytes not yet proven by the whole-blob digest must be able to
   * end in an error (a failed digest discards the partial) before their last byte, never after.
   */
  follow(range?: ByteRange, opts?: { signal?: AbortSignal; holdLastByte?: boolean }): Readable
  /** A written chunk's bytes (RangeNotWrittenError otherwise). */
  readChunk(index: number, opts?: { signal?: AbortSignal; into?: Uint8Array }): Promise<Uint8Array>
  /**
   * Called after prefixBytes, written or state change. Returns unsubscribe. A listener that throws is reported
   * with process.emitWarning; it does not fail the write.
   */
  onProgress(listener: () => void): () => void
  /**
   * Requires every chunk written (IncompleteBlobError). Verifies the whole-blob digest (hashed incrementally as
   * the prefix grows, so usually nothing is left to read), fsyncs, renames into place, updates the index, frees
   * the reservation, then evicts down to quota. On mismatch: DigestMismatchError, the partial is discarded.
   * Concurrent calls share one result.
   */
  commit(opts?: { mediaType?: string; signal?: AbortSignal }): Promise<BlobInfo>
  /** Deletes the partial and frees its reservation. No-op once committed or discarded. */
  discard(): Promise<void>
}

export interface TagRecord {
  readonly digest: Digest
  readonly mediaType: string
  /** ms since the epoch when the origin last resolved the tag */
  readonly resolvedAt: number
}

export interface ManifestCache {
  getManifest(digest: Digest): Promise<{ mediaType: string; bytes: Uint8Array } | undefined>
  /** The caller verified the digest; it is re-checked anyway (DigestMismatchError). */
  putManifest(digest: Digest, mediaType: string, bytes: Uint8Array): Promise<void>
  /** key = `${registry}/${name}:${tag}` */
  getTag(key: string): Promise<TagRecord | undefined>
  putTag(key: string, value: TagRecord): Promise<void>
}

export interface FsStoreOptions extends StoreOptions {
  /** Data directory: `blobs/<alg>/<hex>`, `partial/<alg>-<hex>`, `index/` (level). */
  readonly dir: string
}

export interface FsStore {
  readonly blobs: ContentStore
  readonly manifests: ManifestCache
  /** Stops the content store, then closes the index database. Idempotent. */
  stop(): Promise<void>
}

export {
  BlobExistsError,
  BlobPinnedError,
  IncompleteBlobError,
  InvalidChunkIndexError,
  InvalidRangeError,
  PartialConflictError,
  PartialStateError,
  RangeNotWrittenError,
  StoreClosedError,
  StoreFormatError,
  StoreFullError,
} from './errors.ts'
export { FileStream } from './file.ts'
export { FsContentStore, openFsStore } from './fs-store.ts'
export {
  type CheckedPartial,
  checkStore,
  type StoreCheck,
  type StoreCheckMode,
  type StoreProblem,
  type StoreProblemKind,
} from './fsck.ts'
export { MemoryManifestCache } from './manifests.ts'
export { MemoryContentStore } from './memory-store.ts'
export { Retention, type RetentionInit } from './retention.ts'
