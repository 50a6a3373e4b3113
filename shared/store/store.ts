import type { Readable } from 'node:stream'
import { Bitfield } from '../chunks/bitfield.ts'
import type { HashPool } from '../hashing/index.ts'
import type { Digest } from '../oci/digest.ts'
import type { BlobMeta, LoadedIndex, PartialMeta, RandomAccessFile, StoreBackend, WritableFile } from './backend.ts'
import { ACCESS_FLUSH_MS, RANGE_HANDLE_IDLE_MS, RANGE_HANDLES } from './constants.ts'
import { BlobExistsError, BlobPinnedError, PartialConflictError, StoreClosedError, StoreFullError } from './errors.ts'
import { assertDigest, checkRange, fileStream, once, readFully, SharedFile } from './file.ts'
import type {
  BlobInfo,
  ByteRange,
  ContentStore,
  PartialBlob,
  PartialSummary,
  RemovalReason,
  StoreOptions,
} from './index.ts'
import { chunkCountOf, type PartialHost, restoreWritten, StorePartial } from './partial.ts'

interface BlobRecord {
  readonly size: number
  readonly mediaType?: string
  readonly storedAt: number
  lastAccess: number
}

interface PartialEntry {
  /** What is on disk; undefined for a partial created in this process and not checkpointed yet. */
  meta: PartialMeta | undefined
  readonly size: number
  /** Set while a PartialBlob object is being opened or is open in this process. */
  open?: { readonly chunkSize: number; readonly ready: Promise<StorePartial>; partial?: StorePartial }
}

/**
 * The store's rules, whatever the medium: quota (complete bytes + partial reservations), pins, LRU eviction,
 * access-time batching, and one PartialBlob per digest. Bytes and index records go through a StoreBackend.
 */
export class BlobStore implements ContentStore {
  readonly #backend: StoreBackend
  readonly #maxBytes: number
  readonly #onEvict: ((digest: Digest, reason: RemovalReason) => void) | undefined
  readonly #now: () => number
  readonly #hashing: HashPool | undefined
  /** Complete blobs in least-recently-used-first order (a touch re-inserts at the end). */
  readonly #blobs = new Map<Digest, BlobRecord>()
  readonly #partials = new Map<Digest, PartialEntry>()
  readonly #pins = new Map<Digest, number>()
  /** File operations per digest run one at a time (an eviction's unlink must not hit a newer commit's file). */
  readonly #fileOps = new Map<Digest, Promise<unknown>>()
  readonly #accessDirty = new Set<Digest>()
  /** Handles `readRange` keeps open, least recently used first; each closes when idle, evicted or removed. */
  readonly #rangeHandles = new Map<Digest, RangeHandle>()
  #accessTimer: NodeJS.Timeout | undefined
  #completeBytes = 0
  #reservedBytes = 0
  #stopped: Promise<void> | undefined
  #bootId: string | undefined
  readonly #host: PartialHost

  constructor(backend: StoreBackend, loaded: LoadedIndex | undefined, opts: StoreOptions = {}) {
    const max = opts.maxBytes ?? 0
    if (!(max >= 0)) throw new RangeError(`maxBytes must be >= 0, got ${max}`)
    this.#backend = backend
    this.#maxBytes = max === 0 ? Number.POSITIVE_INFINITY : max
    this.#onEvict = opts.onEvict
    this.#now = opts.now ?? Date.now
    this.#hashing = opts.hashing
    if (loaded !== undefined) {
      for (const [digest, meta] of [...loaded.blobs].sort((a, b) => a[1].lastAccess - b[1].lastAccess)) {
        this.#blobs.set(digest, { ...meta })
        this.#completeBytes += meta.size
      }
      this.#bootId = loaded.bootId
      for (const [digest, meta] of loaded.partials) {
        // Progress recorded without a sync in another boot may not have reached the disk: keep only the file.
        const trusted = meta.synced || (meta.bootId !== undefined && meta.bootId === loaded.bootId)
        const kept = trusted ? meta : { ...meta, written: '', prefix: 0, synced: true }
        this.#partials.set(digest, { meta: kept, size: meta.size })
        this.#reservedBytes += meta.size
      }
    }
    this.#host = {
      checkpoint: (digest, meta) => this.#checkpoint(digest, meta),
      commit: (partial, file, mediaType) => this.#commit(partial, file, mediaType),
      discard: (partial) => this.#discard(partial),
    }
  }

  /** Evicts down to quota (a restart with a smaller quota); best effort when pins and partials are in the way. */
  async enforceQuota(): Promise<void> {
    await this.#evict(this.#plan(0).victims)
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    assertDigest(digest)
    const rec = this.#blobs.get(digest)
    return rec === undefined ? undefined : info(digest, rec)
  }

  async read(digest: Digest, range?: ByteRange): Promise<{ info: BlobInfo; stream: Readable } | undefined> {
    assertDigest(digest)
    this.#assertOpen()
    const rec = this.#blobs.get(digest)
    if (rec === undefined) return undefined
    const r = range ?? { start: 0, end: rec.size }
    checkRange(r, rec.size)
    // Pinned before the first await, so eviction cannot take the file from under us.
    const unpin = this.pin(digest)
    let file: Awaited<ReturnType<StoreBackend['openBlob']>>
    try {
      file = await this.#backend.openBlob(digest)
    } catch (err) {
      unpin()
      throw err
    }
    if (file === undefined) {
      // Removed behind our back: forget it rather than keep advertising it.
      unpin()
      if (this.#blobs.get(digest) === rec) await this.#remove(digest, rec, 'evicted')
      return undefined
    }
    this.#touch(digest, rec)
    const opened = file
    const stream = fileStream(opened, r, () => {
      opened.close().catch(() => {})
      unpin()
    })
    return { info: info(digest, rec), stream }
  }

  async readRange(digest: Digest, range: ByteRange, into?: Uint8Array): Promise<Uint8Array | undefined> {
    assertDigest(digest)
    this.#assertOpen()
    const rec = this.#blobs.get(digest)
    if (rec === undefined) return undefined
    checkRange(range, rec.size)
    if (into !== undefined && into.byteLength !== range.end - range.start)
      throw new RangeError(`readRange into ${into.byteLength} bytes for a range of ${range.end - range.start}`)
    const unpin = this.pin(digest)
    try {
      const held = await this.#rangeFile(digest)
      if (held === undefined) {
        if (this.#blobs.get(digest) === rec) await this.#remove(digest, rec, 'evicted')
        return undefined
      }
      try {
        const bytes = into ?? Buffer.allocUnsafe(range.end - range.start)
        await readFully(held.file, bytes, range.start)
        this.#touch(digest, rec)
        return bytes
      } finally {
        held.release()
      }
    } finally {
      unpin()
    }
  }

  /**
   * A reference to the kept-open file of a complete blob (opened once however many reads want it); undefined when
   * the file is gone. A handle dropped while this waited for it is opened again.
   */
  async #rangeFile(digest: Digest): Promise<{ file: RandomAccessFile; release: () => void } | undefined> {
    for (;;) {
      let h = this.#rangeHandles.get(digest)
      if (h === undefined) {
        const opened = new RangeHandle(this.#backend.openBlob(digest), () => {
          if (this.#rangeHandles.get(digest) === opened) this.#rangeHandles.delete(digest)
        })
        h = opened
        this.#rangeHandles.set(digest, h)
        if (this.#rangeHandles.size > RANGE_HANDLES) this.#rangeHandles.values().next().value!.drop()
      } else {
        this.#rangeHandles.delete(digest)
        this.#rangeHandles.set(digest, h)
      }
      const shared = await h.ready
      if (shared === undefined) return undefined
      const release = h.acquire()
      if (release !== undefined) return { file: shared.file, release }
    }
  }

  async openPartial(
    digest: Digest,
    opts: { size: number; chunkSize: number; signal?: AbortSignal },
  ): Promise<PartialBlob> {
    assertDigest(digest)
    const { size, chunkSize } = opts
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid blob size ${size}`)
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`invalid chunk size ${chunkSize}`)
    opts.signal?.throwIfAborted()
    this.#assertOpen()
    if (this.#blobs.has(digest)) throw new BlobExistsError(digest)
    let entry = this.#partials.get(digest)
    const previous = entry?.open?.partial
    if (previous !== undefined && (previous.state === 'discarded' || previous.state === 'committed')) {
      // Its removal or commit is finishing: wait, then answer from the outcome.
      await previous.settled()
      return this.openPartial(digest, opts)
    }
    if (entry?.open !== undefined) {
      if (entry.size !== size || entry.open.chunkSize !== chunkSize) {
        throw new PartialConflictError(
          `partial ${digest} is open with size ${entry.size} and chunk size ${entry.open.chunkSize}, ` +
            `asked for ${size} and ${chunkSize}`,
        )
      }
      return entry.open.ready
    }
    let cleanup: Promise<void> | undefined
    if (entry !== undefined && entry.size !== size) {
      // The digest names one blob: an old record of another size was wrong. Start over.
      this.#partials.delete(digest)
      this.#reservedBytes -= entry.size
      cleanup = this.#exclusive(digest, () => this.#backend.removePartial(digest))
      entry = undefined
    }
    let evictions: Promise<void> | undefined
    if (entry === undefined) {
      const plan = this.#plan(size)
      if (!plan.enough) throw new StoreFullError(size, this.#usedBytes(), this.#maxBytes)
      evictions = this.#evict(plan.victims)
      entry = { meta: undefined, size }
      this.#partials.set(digest, entry)
      this.#reservedBytes += size
    }
    const resumeFrom = entry.meta
    const current = entry
    const ready = (async () => {
      await cleanup
      await evictions
      const { file, fresh } = await this.#exclusive(digest, () =>
        this.#backend.openPartialFile(digest, size, resumeFrom !== undefined),
      )
      const meta = fresh || resumeFrom === undefined ? undefined : resumeFrom
      const shared = new SharedFile<WritableFile>(file)
      try {
        const partial = new StorePartial({
          digest,
          size,
          chunkSize,
          file: shared,
          written: meta === undefined ? new Bitfield(chunkCountOf(size, chunkSize)) : restoreWritten(meta, chunkSize),
          prefix: meta?.prefix ?? 0,
          createdAt: meta?.createdAt ?? this.#now(),
          bootId: this.#bootId,
          host: this.#host,
          hashing: this.#hashing,
        })
        // Recorded at once, so a restart knows the reservation and the file even before the first chunk.
        if (meta === undefined || meta.chunkSize !== chunkSize) await this.#checkpoint(digest, partial.meta(false))
        if (current.open !== undefined) current.open.partial = partial
        return partial
      } catch (err) {
        shared.release()
        throw err
      }
    })()
    current.open = { chunkSize, ready }
    ready.catch(() => {
      if (this.#partials.get(digest) === current && current.open?.ready === ready) {
        current.open = undefined
        if (current.meta === undefined) {
          this.#partials.delete(digest)
          this.#reservedBytes -= size
        }
      }
    })
    return ready
  }

  getPartial(digest: Digest): PartialBlob | undefined {
    assertDigest(digest)
    return this.#partials.get(digest)?.open?.partial
  }

  async listPartials(): Promise<PartialSummary[]> {
    const out: PartialSummary[] = []
    for (const [digest, entry] of this.#partials) {
      const partial = entry.open?.partial
      if (partial !== undefined) {
        out.push({
          digest,
          size: partial.size,
          chunkSize: partial.chunkSize,
          prefixBytes: partial.prefixBytes,
          chunksWritten: partial.written.count,
          open: true,
        })
      } else if (entry.meta !== undefined) {
        const written = restoreWritten(entry.meta, entry.meta.chunkSize)
        out.push({
          digest,
          size: entry.size,
          chunkSize: entry.meta.chunkSize,
          prefixBytes: Math.max(entry.meta.prefix, Math.min(entry.size, written.firstMissing() * entry.meta.chunkSize)),
          chunksWritten: written.count,
          open: entry.open !== undefined,
        })
      }
    }
    return out
  }

  async delete(digest: Digest): Promise<boolean> {
    assertDigest(digest)
    this.#assertOpen()
    const rec = this.#blobs.get(digest)
    if (rec === undefined) return false
    if (this.#pins.has(digest)) throw new BlobPinnedError(digest)
    await this.#remove(digest, rec, 'deleted')
    return true
  }

  async *list(): AsyncIterable<BlobInfo> {
    // Snapshot: reads re-insert entries, which would otherwise be visited twice.
    for (const [digest, rec] of [...this.#blobs]) yield info(digest, rec)
  }

  usage(): { bytes: number; blobs: number; maxBytes: number } {
    return { bytes: this.#usedBytes(), blobs: this.#blobs.size, maxBytes: this.#maxBytes }
  }

  pin(digest: Digest): () => void {
    assertDigest(digest)
    this.#pins.set(digest, (this.#pins.get(digest) ?? 0) + 1)
    return once(() => {
      const n = this.#pins.get(digest) ?? 0
      if (n <= 1) this.#pins.delete(digest)
      else this.#pins.set(digest, n - 1)
    })
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stopNow()
    return this.#stopped
  }

  async #stopNow(): Promise<void> {
    clearTimeout(this.#accessTimer)
    for (const h of [...this.#rangeHandles.values()]) h.drop()
    const partials = [...this.#partials.values()].map(async (entry) => {
      const partial = await entry.open?.ready.catch(() => undefined)
      await partial?.close()
    })
    await Promise.allSettled(partials)
    await this.#flushAccess()
    await Promise.allSettled(this.#fileOps.values())
    await this.#backend.stop()
  }

  #usedBytes(): number {
    return this.#completeBytes + this.#reservedBytes
  }

  /** Which LRU unpinned complete blobs to evict so that `needed` more bytes fit. */
  #plan(needed: number): { enough: boolean; victims: Digest[] } {
    let excess = this.#usedBytes() + needed - this.#maxBytes
    const victims: Digest[] = []
    if (excess <= 0) return { enough: true, victims }
    for (const [digest, rec] of this.#blobs) {
      if (this.#pins.has(digest)) continue
      victims.push(digest)
      excess -= rec.size
      if (excess <= 0) return { enough: true, victims }
    }
    return { enough: false, victims }
  }

  async #evict(victims: readonly Digest[]): Promise<void> {
    await Promise.all(
      victims.map((digest) => {
        const rec = this.#blobs.get(digest)
        // The blob is already forgotten; if its file or record outlives a failed removal, the next open's
        // reconcile finds it again. Not a reason to fail the download that needed the room.
        return rec === undefined ? undefined : this.#remove(digest, rec, 'evicted').catch(() => {})
      }),
    )
  }

  /** Forgets the blob at once (accounting, onEvict), then removes its file and record. */
  #remove(digest: Digest, rec: BlobRecord, reason: RemovalReason): Promise<void> {
    this.#blobs.delete(digest)
    this.#completeBytes -= rec.size
    this.#accessDirty.delete(digest)
    this.#rangeHandles.get(digest)?.drop()
    this.#onEvict?.(digest, reason)
    return this.#exclusive(digest, () => this.#backend.removeBlob(digest))
  }

  #touch(digest: Digest, rec: BlobRecord): void {
    rec.lastAccess = this.#now()
    this.#blobs.delete(digest)
    this.#blobs.set(digest, rec)
    this.#accessDirty.add(digest)
    if (this.#accessTimer === undefined) {
      this.#accessTimer = setTimeout(() => {
        this.#flushAccess().catch(() => {})
      }, ACCESS_FLUSH_MS)
      this.#accessTimer.unref()
    }
  }

  async #flushAccess(): Promise<void> {
    this.#accessTimer = undefined
    const entries: [Digest, BlobMeta][] = []
    for (const digest of this.#accessDirty) {
      const rec = this.#blobs.get(digest)
      if (rec !== undefined) entries.push([digest, { ...rec }])
    }
    this.#accessDirty.clear()
    if (entries.length > 0) await this.#backend.putBlobMetas(entries)
  }

  async #checkpoint(digest: Digest, meta: PartialMeta): Promise<void> {
    await this.#backend.putPartialMeta(digest, meta)
    const entry = this.#partials.get(digest)
    if (entry !== undefined) entry.meta = meta
  }

  async #commit(partial: StorePartial, file: WritableFile, mediaType: string | undefined): Promise<BlobInfo> {
    const { digest, size } = partial
    const now = this.#now()
    const meta: BlobMeta =
      mediaType === undefined
        ? { size, storedAt: now, lastAccess: now }
        : { size, mediaType, storedAt: now, lastAccess: now }
    await this.#exclusive(digest, () => this.#backend.commitPartial(digest, file, meta))
    this.#dropPartial(digest, partial)
    const rec: BlobRecord = { ...meta }
    this.#blobs.set(digest, rec)
    this.#completeBytes += size
    await this.#evict(this.#plan(0).victims)
    return info(digest, rec)
  }

  async #discard(partial: StorePartial): Promise<void> {
    this.#dropPartial(partial.digest, partial)
    await this.#exclusive(partial.digest, () => this.#backend.removePartial(partial.digest))
  }

  #dropPartial(digest: Digest, partial: StorePartial): void {
    const entry = this.#partials.get(digest)
    if (entry?.open?.partial !== partial) return
    this.#partials.delete(digest)
    this.#reservedBytes -= entry.size
  }

  #exclusive<T>(digest: Digest, fn: () => Promise<T>): Promise<T> {
    const prev = this.#fileOps.get(digest) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const settled = next.then(
      () => {},
      () => {},
    )
    this.#fileOps.set(digest, settled)
    settled.then(() => {
      if (this.#fileOps.get(digest) === settled) this.#fileOps.delete(digest)
    })
    return next
  }

  #assertOpen(): void {
    if (this.#stopped !== undefined) throw new StoreClosedError()
  }
}

function info(digest: Digest, rec: BlobRecord): BlobInfo {
  const out: BlobInfo =
    rec.mediaType === undefined
      ? { digest, size: rec.size, storedAt: rec.storedAt, lastAccess: rec.lastAccess }
      : { digest, size: rec.size, mediaType: rec.mediaType, storedAt: rec.storedAt, lastAccess: rec.lastAccess }
  return Object.freeze(out)
}

/**
 * A complete blob's file kept open for `readRange`: closed once idle for RANGE_HANDLE_IDLE_MS, or when dropped
 * (evicted from the handle cache, the blob removed, the store stopped); reads under way hold their own reference.
 */
class RangeHandle {
  readonly ready: Promise<SharedFile<RandomAccessFile> | undefined>
  #file: SharedFile<RandomAccessFile> | undefined
  #timer: NodeJS.Timeout | undefined
  #dropped = false
  readonly #onDrop: () => void

  constructor(opening: Promise<RandomAccessFile | undefined>, onDrop: () => void) {
    this.#onDrop = onDrop
    this.ready = opening.then(
      (file) => {
        if (file === undefined) {
          this.drop()
          return undefined
        }
        this.#file = new SharedFile(file)
        if (this.#dropped) this.#file.release()
        else this.#idle()
        return this.#file
      },
      (err: unknown) => {
        this.drop()
        throw err
      },
    )
  }

  /** Another reference to the open file (restarting its idle clock); undefined once it is closed or dropped. */
  acquire(): (() => void) | undefined {
    if (this.#file === undefined || this.#dropped) return undefined
    this.#idle()
    return this.#file.acquire()
  }

  drop(): void {
    if (this.#dropped) return
    this.#dropped = true
    clearTimeout(this.#timer)
    this.#onDrop()
    this.#file?.release()
  }

  #idle(): void {
    if (this.#dropped) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.drop(), RANGE_HANDLE_IDLE_MS)
    this.#timer.unref()
  }
}
