import { RegistryError } from '../oci/errors.ts'

/** The store cannot reserve room for a new download: everything that could be evicted is pinned or partial. */
export class StoreFullError extends Error {
  override name = 'StoreFullError'
  readonly code = 'STORE_FULL'
  readonly needed: number
  readonly maxBytes: number
  constructor(needed: number, used: number, maxBytes: number) {
    super(`store full: need ${needed} bytes, ${used} of ${maxBytes} in use by pinned blobs and partial downloads`)
    this.needed = needed
    this.maxBytes = maxBytes
  }
}

export class BlobPinnedError extends Error {
  override name = 'BlobPinnedError'
  readonly code = 'BLOB_PINNED'
  constructor(digest: string) {
    super(`blob ${digest} is pinned (being read or downloaded) and cannot be deleted`)
  }
}

export class BlobExistsError extends Error {
  override name = 'BlobExistsError'
  readonly code = 'BLOB_EXISTS'
  constructor(digest: string) {
    super(`blob ${digest} is already complete in the store`)
  }
}

/** A second openPartial for a digest already open in this process disagreed on size or chunk size. */
export class PartialConflictError extends Error {
  override name = 'PartialConflictError'
  readonly code = 'PARTIAL_CONFLICT'
}

/** The partial was committed, discarded or closed with its store; or an earlier queued append failed. */
export class PartialStateError extends Error {
  override name = 'PartialStateError'
  readonly code = 'PARTIAL_STATE'
}

export class IncompleteBlobError extends Error {
  override name = 'IncompleteBlobError'
  readonly code = 'BLOB_INCOMPLETE'
  constructor(digest: string, missingChunks: number) {
    super(`blob ${digest} cannot be committed: ${missingChunks} chunk(s) not written`)
  }
}

export class InvalidChunkIndexError extends Error {
  override name = 'InvalidChunkIndexError'
  readonly code = 'CHUNK_INDEX_INVALID'
  constructor(index: number, chunkCount: number) {
    super(`chunk index ${index} out of range 0..${chunkCount - 1}`)
  }
}

/** Asked a partial for bytes that are not on disk yet. */
export class RangeNotWrittenError extends Error {
  override name = 'RangeNotWrittenError'
  readonly code = 'RANGE_NOT_WRITTEN'
  constructor(start: number, end: number) {
    super(`bytes ${start}..${end} are not written yet`)
  }
}

/** A byte range outside the blob. A RegistryError so the HTTP layer answers 416 without translating. */
export class InvalidRangeError extends RegistryError {
  override name = 'InvalidRangeError'
  constructor(start: number, end: number, size: number) {
    super('RANGE_INVALID', `invalid range ${start}..${end} of a ${size}-byte blob`, { detail: { start, end, size } })
  }
}

export class StoreClosedError extends Error {
  override name = 'StoreClosedError'
  readonly code = 'STORE_CLOSED'
  constructor() {
    super('content store is closed')
  }
}

/** The data directory was written by an incompatible version of the store. */
export class StoreFormatError extends Error {
  override name = 'StoreFormatError'
  readonly code = 'STORE_FORMAT'
}
