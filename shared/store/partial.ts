import type { Readable } from 'node:stream'
import { addAbortSignal } from 'node:stream'
import { Bitfield } from '../chunks/bitfield.ts'
import { type BlobHasher, type HashPool, inlineHashing } from '../hashing/index.ts'
import type { Digest } from '../oci/digest.ts'
import { DigestMismatchError, SizeMismatchError } from '../oci/errors.ts'
import type { PartialMeta, WritableFile } from './backend.ts'
import {
  CHECKPOINT_INTERVAL_MS,
  CHECKPOINT_UNSYNCED_INTERVAL_MS,
  FEED_QUEUED_BYTES,
  HASH_READ_BYTES,
  TAP_HOLD_MS,
} from './constants.ts'
import {
  IncompleteBlobError,
  InvalidChunkIndexError,
  PartialStateError,
  RangeNotWrittenError,
  StoreClosedError,
} from './errors.ts'
import { type AppendTap, checkRange, fileStream, readFully, type SharedFile, slicePieces } from './file.ts'
import type { BlobInfo, ByteRange, PartialBlob, PartialState, ReadonlyBitfield } from './index.ts'

/** What a partial needs from the store that owns it. */
export interface PartialHost {
  checkpoint(digest: Digest, meta: PartialMeta): Promise<void>
  commit(partial: StorePartial, file: WritableFile, mediaType: string | undefined): Promise<BlobInfo>
  discard(partial: StorePartial): Promise<void>
}

export interface PartialInit {
  readonly digest: Digest
  readonly size: number
  readonly chunkSize: number
  readonly file: SharedFile<WritableFile>
  readonly written: Bitfield
  /** Sequential prefix already on disk. */
  readonly prefix: number
  readonly createdAt: number
  /** When known, checkpoints skip the sync (see PartialMeta.synced); the final one at close always syncs. */
  readonly bootId: string | undefined
  readonly host: PartialHost
  /** Where the whole-blob hash runs (default: inline). */
  readonly hashing?: HashPool | undefined
}

export function chunkCountOf(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize)
}

/**
 * An in-progress download. Invariants: a chunk bit is set only after its bytes are written; the persisted
 * bitfield and prefix claim only bytes synced before they were saved; the whole-blob digest is fed only with
 * bytes as they are on disk (directly from a write that just landed at the hashed offset, else read back).
 */
export class StorePartial implements PartialBlob {
  readonly digest: Digest
  readonly size: number
  readonly chunkSize: number
  readonly chunkCount: number
  readonly #createdAt: number
  readonly #bootId: string | undefined
  readonly #host: PartialHost
  readonly #file: SharedFile<WritableFile>
  readonly #written: Bitfield
  #firstMissing: number
  #cursor: number
  #state: PartialState = 'open'
  readonly #listeners = new Set<() => void>()
  /** Followers sending to a socket that take an append's bytes as they land (see AppendTap). */
  readonly #taps = new Set<AppendTap>()

  // Whole-blob hashing follows the prefix.
  readonly #hashing: HashPool
  #hasher: BlobHasher
  #hashed = 0
  #hashGeneration = 0
  #chasing = false
  #chase: Promise<void> = Promise.resolve()
  #hashError: unknown
  #actual: Digest | undefined
  /**
   * Set once the commit found every byte to match the digest: a follower's held last byte goes out then, while the
   * commit makes the blob durable (the file's sync, its rename, the index record), which a client need not wait for.
   */
  #verified = false
  /** What the chase reads into: kept, and shared with the hashing threads when the pool has them (no copy). */
  #chaseBuffer: Uint8Array | undefined
  /**
   * Hash updates that wait for a tap to let go of their pieces, in blob order: every later update queues behind
   * them, and the digest is taken only once they have all been given.
   */
  #feedTail: Promise<void> = Promise.resolve()
  #feedsQueued = 0
  #feedQueuedBytes = 0

  // Writes: a lock per chunk orders overlapping writers; appends queue behind each other.
  readonly #locks = new Map<number, Promise<void>>()
  readonly #pending = new Set<Promise<unknown>>()
  #appendTail: Promise<void> = Promise.resolve()
  #appendEpoch = 0

  // Checkpoints: at most one in flight, coalescing the changes made meanwhile.
  #dirty = false
  #checkpointing = false
  #checkpoint: Promise<void> = Promise.resolve()
  #checkpointError: unknown
  #lastCheckpoint = Number.NEGATIVE_INFINITY
  #wakeCheckpoint: (() => void) | undefined

  #committed: Promise<BlobInfo> | undefined
  #discarded: Promise<void> | undefined

  constructor(init: PartialInit) {
    this.digest = init.digest
    this.size = init.size
    this.chunkSize = init.chunkSize
    this.chunkCount = chunkCountOf(init.size, init.chunkSize)
    this.#createdAt = init.createdAt
    this.#bootId = init.bootId
    this.#host = init.host
    this.#file = init.file
    this.#written = init.written
    this.#firstMissing = init.written.firstMissing(0)
    this.#cursor = 0
    this.#cursor = Math.max(Math.min(init.prefix, init.size), this.prefixBytes)
    this.#hashing = init.hashing ?? inlineHashing
    this.#hasher = this.#hashing.hasher(init.digest)
    this.#kickChase()
  }

  get state(): PartialState {
    return this.#state
  }

  get written(): ReadonlyBitfield {
    return this.#written
  }

  get prefixBytes(): number {
    return Math.max(this.#cursor, Math.min(this.size, this.#firstMissing * this.chunkSize))
  }

  get appendOffset(): number {
    return this.#cursor
  }

  /** The record a checkpoint persists; `synced` says whether the caller syncs the file before recording it. */
  meta(synced: boolean): PartialMeta {
    const meta: PartialMeta = {
      size: this.size,
      chunkSize: this.chunkSize,
      written: Buffer.from(this.#written.encode()).toString('base64'),
      prefix: this.#cursor,
      createdAt: this.#createdAt,
      synced,
    }
    return this.#bootId === undefined ? meta : { ...meta, bootId: this.#bootId }
  }

  onProgress(listener: () => void): () => void {
    const wrapped = (): void => listener()
    this.#listeners.add(wrapped)
    return () => {
      this.#listeners.delete(wrapped)
    }
  }

  append(
    bytes: Uint8Array | readonly Uint8Array[],
    opts: { signal?: AbortSignal; at?: number; transfer?: boolean } = {},
  ): Promise<void> {
    const pieces = bytes instanceof Uint8Array ? [bytes] : bytes
    const epoch = this.#appendEpoch
    const run = this.#appendTail.then(() => {
      if (epoch !== this.#appendEpoch) {
        throw new PartialStateError(`an earlier append failed; restart at appendOffset ${this.#cursor}`)
      }
      return this.#track(this.#appendNow(pieces, opts.signal, opts.at, opts.transfer === true))
    })
    this.#appendTail = run.then(
      () => {},
      () => {
        if (epoch === this.#appendEpoch) this.#appendEpoch++
      },
    )
    return run
  }

  writeChunk(
    index: number,
    bytes: Uint8Array,
    opts: { signal?: AbortSignal; lent?: (released: Promise<void>) => void } = {},
  ): Promise<void> {
    return this.#track(this.#writeChunk(index, bytes, opts.signal, opts.lent))
  }

  read(range: ByteRange): Readable {
    checkRange(range, this.size)
    this.#assertReadable()
    if (this.#availableFrom(range.start) < range.end) throw new RangeNotWrittenError(range.start, range.end)
    return fileStream(this.#file.file, range, this.#file.acquire())
  }

  follow(
    range: ByteRange = { start: 0, end: this.size },
    opts: { signal?: AbortSignal; holdLastByte?: boolean } = {},
  ): Readable {
    checkRange(range, this.size)
    this.#assertReadable()
    const release = this.#file.acquire()
    let unsubscribe = (): void => {}
    // Until the commit has checked the whole-blob digest, the range's last byte stays back.
    const held = (): boolean => opts.holdLastByte === true && !this.#verified && this.#state !== 'committed'
    const stream = fileStream(
      this.#file.file,
      range,
      () => {
        unsubscribe()
        release()
      },
      {
        available: (position) => Math.min(this.#availableFrom(position), held() ? range.end - 1 : range.end),
        waitFor: (wake) => {
          if (this.#state === 'discarded' || this.#state === 'closed') {
            throw new PartialStateError(`partial ${this.digest} was ${this.#state} before it was complete`)
          }
          unsubscribe = this.onProgress(() => {
            unsubscribe()
            wake()
          })
        },
        tap: (tap) => {
          this.#taps.add(tap)
          return () => {
            this.#taps.delete(tap)
          }
        },
      },
    )
    return opts.signal === undefined ? stream : addAbortSignal(opts.signal, stream)
  }

  async readChunk(index: number, opts: { signal?: AbortSignal; into?: Uint8Array } = {}): Promise<Uint8Array> {
    this.#checkIndex(index)
    opts.signal?.throwIfAborted()
    this.#assertReadable()
    const start = index * this.chunkSize
    const length = this.#chunkLength(index)
    if (opts.into !== undefined && opts.into.byteLength !== length)
      throw new SizeMismatchError(length, opts.into.byteLength)
    // Not zero-filled: readFully fills every byte or throws.
    const bytes = opts.into ?? Buffer.allocUnsafe(length)
    if (this.#availableFrom(start) < start + bytes.byteLength) {
      throw new RangeNotWrittenError(start, start + bytes.byteLength)
    }
    const release = this.#file.acquire()
    try {
      await readFully(this.#file.file, bytes, start)
    } finally {
      release()
    }
    return bytes
  }

  commit(opts: { mediaType?: string; signal?: AbortSignal } = {}): Promise<BlobInfo> {
    if (this.#committed !== undefined) return this.#committed
    if (this.#state !== 'open') return Promise.reject(this.#stateError())
    if (!this.#written.complete) {
      return Promise.reject(new IncompleteBlobError(this.digest, this.chunkCount - this.#written.count))
    }
    this.#setState('committing')
    const committed = this.#commitNow(opts.mediaType, opts.signal).catch((err: unknown) => {
      if (this.#state === 'committing') {
        // Not verified-and-wrong (that discards): e.g. aborted or an I/O error. The caller may retry. The bytes on
        // disk are no longer known to be those hashed (a failed sync may have lost them): a later commit hashes
        // them again, and followers' last bytes wait for it.
        this.#setState('open')
        this.#committed = undefined
        if (this.#actual !== undefined) {
          this.#verified = false
          this.#actual = undefined
          this.#resetHash()
        }
      }
      throw err
    })
    this.#committed = committed
    return committed
  }

  discard(): Promise<void> {
    if (this.#discarded !== undefined) return this.#discarded
    if (this.#state === 'committed') return Promise.resolve()
    if (this.#state === 'committing') return Promise.reject(new PartialStateError('partial is being committed'))
    if (this.#state === 'closed') return Promise.reject(new StoreClosedError())
    this.#discarded = this.#discardNow()
    return this.#discarded
  }

  /** Resolves once a commit or discard under way has finished (whatever its outcome). */
  async settled(): Promise<void> {
    await this.#committed?.catch(() => {})
    await this.#discarded?.catch(() => {})
  }

  /** The store is closing: stop accepting writes, let those in flight land, persist progress, let go of the file. */
  async close(): Promise<void> {
    if (this.#state === 'committing') await this.#committed?.catch(() => {})
    if (this.#state === 'discarded') await this.#discarded?.catch(() => {})
    if (this.#state !== 'open') return
    this.#setState('closed')
    this.#notify()
    await Promise.allSettled(this.#pending)
    this.#hasher.drop()
    // Always a final, synced record: it stays trusted after a reboot.
    this.#scheduleCheckpoint()
    await this.#checkpoint
    this.#file.release()
  }

  async #commitNow(mediaType: string | undefined, signal: AbortSignal | undefined): Promise<BlobInfo> {
    // Updates held by a tap are given before the digest is asked for.
    await abortable(this.#feedTail, signal)
    await this.#whenHashed(signal)
    if (this.#actual === undefined) {
      try {
        this.#actual = await this.#hasher.digest()
      } catch (err) {
        // The hash is lost (its thread failed): a later commit hashes the bytes on disk again.
        this.#resetHash()
        throw err
      }
    }
    if (this.#actual !== this.digest) {
      const err = new DigestMismatchError(this.digest, this.#actual)
      this.#discarded = this.#discardNow()
      await this.#discarded
      throw err
    }
    this.#verified = true
    this.#notify()
    await Promise.allSettled(this.#pending)
    await this.#checkpoint
    const info = await this.#host.commit(this, this.#file.file, mediaType)
    this.#setState('committed')
    this.#file.release()
    this.#notify()
    return info
  }

  async #discardNow(): Promise<void> {
    this.#setState('discarded')
    this.#hasher.drop()
    this.#notify()
    await Promise.allSettled(this.#pending)
    await this.#checkpoint
    try {
      await this.#host.discard(this)
    } finally {
      this.#file.release()
    }
  }

  async #appendNow(
    pieces: readonly Uint8Array[],
    signal: AbortSignal | undefined,
    at: number | undefined,
    transfer: boolean,
  ): Promise<void> {
    signal?.throwIfAborted()
    this.#assertWritable()
    if (at !== undefined && at !== this.#cursor) {
      // Past the cursor only over bytes already on disk (chunks another writer put there): decided here, in the
      // append queue, so no write between the caller's look and this one can move the bytes elsewhere.
      if (at < this.#cursor || this.#availableFrom(this.#cursor) < at) {
        throw new PartialStateError(
          `append at ${at}, but the bytes on disk end at ${this.#availableFrom(this.#cursor)}`,
        )
      }
      this.#cursor = at
    }
    const start = this.#cursor
    let length = 0
    for (const piece of pieces) length += piece.byteLength
    const end = start + length
    if (end > this.size) throw new SizeMismatchError(this.size, end)
    if (length === 0) return
    const C = this.chunkSize
    const first = Math.floor(start / C)
    const last = Math.floor((end - 1) / C)
    const releases: (() => void)[] = []
    let bitsChanged = false
    let hashing: Promise<void> | undefined
    try {
      for (let k = first; k <= last; k++) releases.push(await this.#lock(k))
      this.#assertWritable()
      // Chunks already written (by writeChunk) keep their bytes: others may be reading them.
      let skipped = false
      let runStart = -1
      const writes: Promise<void>[] = []
      for (let k = first; k <= last + 1; k++) {
        const segStart = Math.max(start, k * C)
        if (k <= last && !this.#written.has(k)) {
          if (runStart < 0) runStart = segStart
          continue
        }
        if (k <= last) skipped = true
        if (runStart >= 0) {
          const runEnd = Math.min(end, segStart)
          writes.push(this.#file.file.writev(slicePieces(pieces, runStart - start, runEnd - start), runStart))
          runStart = -1
        }
      }
      await Promise.all(writes)
      this.#cursor = end
      for (let k = first; k <= last; k++) {
        if (Math.min((k + 1) * C, this.size) <= end && this.#setBit(k)) bitsChanged = true
      }
      if (skipped) this.#kickChase()
      else hashing = this.#feed(pieces, start, transfer, transfer ? this.#tap(start, pieces) : [])
    } finally {
      for (const release of releases) release()
    }
    // Sequential progress is persisted at chunk ends; a restart resumes from the last one.
    if (bitsChanged) this.#scheduleCheckpoint()
    this.#notify()
    // The hashing thread is behind: the next append waits (and with it the origin).
    await hashing
  }

  async #writeChunk(
    index: number,
    bytes: Uint8Array,
    signal: AbortSignal | undefined,
    lent: ((released: Promise<void>) => void) | undefined,
  ): Promise<void> {
    this.#checkIndex(index)
    const length = this.#chunkLength(index)
    if (bytes.byteLength !== length) throw new SizeMismatchError(length, bytes.byteLength)
    this.#assertWritable()
    if (this.#written.has(index)) return
    signal?.throwIfAborted()
    const release = await this.#lock(index)
    let hashing: Promise<void> | undefined
    let hashedHere: Promise<void> | undefined
    try {
      this.#assertWritable()
      if (this.#written.has(index)) return
      const start = index * this.chunkSize
      // Only when a sequential writer stopped inside this chunk: bytes already hashed get overwritten.
      const overwritesPrefix = start < this.prefixBytes
      await this.#file.file.write(bytes, start)
      this.#setBit(index)
      if (overwritesPrefix) this.#resetHash()
      else {
        // A caller that waits for the bytes to be let go lends them to the followers at this offset: sent as they
        // are, not read back from the file. The hash gets them once the taps let go (or a copy after TAP_HOLD_MS).
        const holds = lent === undefined ? [] : this.#tap(start, [bytes])
        const hashed = Promise.withResolvers<void>()
        hashing = this.#feed([bytes], start, false, holds, hashed)
        // Free for the caller once every tap's socket took the bytes and the hash no longer reads them.
        if (holds.length > 0) lent!(Promise.allSettled([...holds, hashed.promise]).then(() => {}))
        // Queued behind a lent chunk's update: resolved only once these bytes were hashed too, so a caller that
        // reuses its buffer when this resolves never changes bytes the hash has still to read.
        else hashedHere = hashed.promise
      }
    } finally {
      release()
    }
    this.#scheduleCheckpoint()
    this.#notify()
    await hashing
    await hashedHere
  }

  #setBit(index: number): boolean {
    if (!this.#written.set(index)) return false
    if (index === this.#firstMissing) this.#firstMissing = this.#written.firstMissing(index)
    return true
  }

  /** How far bytes are on disk, contiguously, from `position`. */
  #availableFrom(position: number): number {
    const prefix = this.prefixBytes
    if (position < prefix) return prefix
    let k = Math.floor(position / this.chunkSize)
    while (k < this.chunkCount && this.#written.has(k)) k++
    return Math.max(position, Math.min(this.size, k * this.chunkSize))
  }

  /**
   * Offers an append's bytes, just on disk, to the taps (followers at exactly this offset, sending to a socket).
   * Only bytes the caller gave up (`transfer`) are offered: a tap may hold them past the append's end, which a
   * caller that reuses or frees its pieces once the append resolves could not allow. Returns what the taps hold.
   */
  #tap(offset: number, pieces: readonly Uint8Array[]): Promise<void>[] {
    const holds: Promise<void>[] = []
    for (const tap of [...this.#taps]) {
      try {
        const held = tap(offset, pieces)
        if (held !== undefined) holds.push(held)
      } catch (err) {
        // A tap's bug must not fail a write that landed; the follower still reads the bytes from the file.
        process.emitWarning(err as Error)
      }
    }
    return holds
  }

  /**
   * Hashes bytes that just landed at the hashed offset; a promise when the hash is behind (wait before more).
   * `holds`: taps still sending these pieces; the pieces go to the hasher (which may take their memory) once they
   * let go, and every later update queues behind them, so the hash still sees the bytes in blob order.
   */
  #feed(
    pieces: readonly Uint8Array[],
    position: number,
    transfer: boolean,
    holds: readonly Promise<void>[],
    hashed?: PromiseWithResolvers<void>,
  ): Promise<void> | undefined {
    let behind: Promise<void> | undefined
    if (this.#chasing || position !== this.#hashed) hashed?.resolve()
    else {
      // Counted first: a transferred piece is empty once given.
      for (const piece of pieces) this.#hashed += piece.byteLength
      if (holds.length === 0 && this.#feedsQueued === 0) {
        behind = this.#hasher.update(pieces, { transfer })
        if (behind === undefined) hashed?.resolve()
        else if (hashed !== undefined) behind.then(hashed.resolve, () => hashed.resolve())
      } else {
        const hasher = this.#hasher
        let length = 0
        for (const piece of pieces) length += piece.byteLength
        this.#feedsQueued++
        this.#feedQueuedBytes += length
        // A socket that has not taken its batch in time (its client stopped reading) keeps it: the hash gets a copy.
        const fed = Promise.all([this.#feedTail, settledWithin(holds, TAP_HOLD_MS)]).then(([, free]) =>
          hasher.update(pieces, { transfer: transfer && free }),
        )
        const done = (): void => {
          this.#feedsQueued--
          this.#feedQueuedBytes -= length
          hashed?.resolve()
        }
        this.#feedTail = fed.then(done, () => {
          done()
          // The hash missed these bytes: start it again from the file rather than fail a commit of good bytes (a
          // hasher replaced meanwhile was reset already). An error that persists fails the read-back's update.
          if (hasher === this.#hasher) this.#resetHash()
        })
        // Appends go on while a tap's socket holds a batch (a client falling behind is left to the file), up to a
        // bound on the memory of the batches queued behind it (reached only when the machine starves the hash).
        behind = this.#feedQueuedBytes > FEED_QUEUED_BYTES ? this.#feedTail : undefined
      }
    }
    if (this.#hashed < this.prefixBytes) this.#kickChase()
    return behind
  }

  #resetHash(): void {
    this.#hasher.drop()
    this.#hasher = this.#hashing.hasher(this.digest)
    this.#hashed = 0
    this.#hashGeneration++
    this.#kickChase()
  }

  #kickChase(): void {
    if (this.#chasing || this.#hashed >= this.prefixBytes) return
    this.#chasing = true
    this.#chase = this.#runChase()
  }

  /** Reads back and hashes bytes between the hashed offset and the prefix (they landed out of order). */
  async #runChase(): Promise<void> {
    let release: (() => void) | undefined
    try {
      release = this.#file.acquire()
      // Reused: each update is hashed (awaited below) before the next read overwrites it.
      const buffer = (this.#chaseBuffer ??=
        this.#hashing.sharedBuffer?.(HASH_READ_BYTES) ?? Buffer.allocUnsafe(HASH_READ_BYTES))
      for (;;) {
        const from = this.#hashed
        const to = Math.min(this.prefixBytes, from + buffer.byteLength)
        if (from >= to || this.#state === 'discarded' || this.#state === 'closed') return
        const generation = this.#hashGeneration
        const piece = buffer.subarray(0, to - from)
        await readFully(this.#file.file, piece, from)
        // Updates still queued behind a tap's socket are earlier bytes (they moved the hashed offset when queued).
        if (this.#feedsQueued > 0) await this.#feedTail
        if (generation !== this.#hashGeneration) continue
        const behind = this.#hasher.update([piece])
        this.#hashed = to
        await behind
      }
    } catch (err) {
      this.#hashError = err
    } finally {
      // Synchronous with the loop's last check, so no write can slip between "nothing left" and "not chasing".
      this.#chasing = false
      release?.()
    }
  }

  async #whenHashed(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted()
      if (this.#hashError !== undefined) {
        const err = this.#hashError
        this.#hashError = undefined
        throw err
      }
      if (this.#hashed >= this.size) return
      const before = this.#hashed
      const generation = this.#hashGeneration
      this.#kickChase()
      await abortable(this.#chase, signal)
      if (this.#hashed === before && generation === this.#hashGeneration && this.#hashError === undefined) {
        // Cannot happen while every chunk is written (the prefix is the whole blob); fail rather than spin.
        throw new Error(`hashing of ${this.digest} stalled at ${before} of ${this.size} bytes`)
      }
    }
  }

  #scheduleCheckpoint(): void {
    this.#dirty = true
    if (this.#checkpointing) return
    this.#checkpointing = true
    this.#checkpoint = this.#runCheckpoints()
  }

  async #runCheckpoints(): Promise<void> {
    const wanted = (): boolean => this.#dirty && (this.#state === 'open' || this.#state === 'closed')
    try {
      while (wanted()) {
        const sync = this.#bootId === undefined || this.#state === 'closed'
        const interval = sync ? CHECKPOINT_INTERVAL_MS : CHECKPOINT_UNSYNCED_INTERVAL_MS
        const wait = this.#lastCheckpoint + interval - performance.now()
        if (wait > 0 && this.#state === 'open') {
          await this.#pause(wait)
          if (!wanted()) break
        }
        this.#dirty = false
        this.#lastCheckpoint = performance.now()
        // Snapshot first, then sync: the record never claims bytes the sync did not cover.
        const meta = this.meta(sync)
        if (sync) await this.#file.file.datasync()
        await this.#host.checkpoint(this.digest, meta)
      }
    } catch (err) {
      this.#checkpointError = err
    } finally {
      this.#checkpointing = false
    }
  }

  /** Waits out the checkpoint interval; a state change (commit, discard, close) cuts it short. */
  #pause(ms: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>()
    const timer = setTimeout(resolve, ms)
    timer.unref()
    this.#wakeCheckpoint = () => {
      clearTimeout(timer)
      resolve()
    }
    return promise
  }

  #setState(state: PartialState): void {
    this.#state = state
    this.#wakeCheckpoint?.()
    this.#wakeCheckpoint = undefined
  }

  #lock(index: number): Promise<() => void> {
    const held = this.#locks.get(index)
    if (held !== undefined) return held.then(() => this.#lock(index))
    const { promise, resolve } = Promise.withResolvers<void>()
    this.#locks.set(index, promise)
    return Promise.resolve(() => {
      this.#locks.delete(index)
      resolve()
    })
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p)
    const untrack = (): void => {
      this.#pending.delete(p)
    }
    p.then(untrack, untrack)
    return p
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener()
      } catch (err) {
        // A listener's bug must not fail a write that landed (nor poison the append queue).
        process.emitWarning(err as Error)
      }
    }
  }

  #checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.chunkCount) {
      throw new InvalidChunkIndexError(index, this.chunkCount)
    }
  }

  #chunkLength(index: number): number {
    return Math.min(this.chunkSize, this.size - index * this.chunkSize)
  }

  #assertWritable(): void {
    if (this.#state !== 'open') throw this.#stateError()
    if (this.#checkpointError !== undefined) throw this.#checkpointError
  }

  #assertReadable(): void {
    if ((this.#state !== 'open' && this.#state !== 'committing') || this.#file.closed) throw this.#stateError()
  }

  #stateError(): Error {
    if (this.#state === 'closed') return new StoreClosedError()
    return new PartialStateError(`partial ${this.digest} is ${this.#state}`)
  }
}

/** Bitfield for a resumed partial: chunks (of `chunkSize`) whose bytes the persisted record says are on disk. */
export function restoreWritten(meta: PartialMeta, chunkSize: number): Bitfield {
  const old = decodeWritten(meta.written, chunkCountOf(meta.size, meta.chunkSize))
  const bf = new Bitfield(chunkCountOf(meta.size, chunkSize))
  // Also right when the chunk size changed: a chunk is written if the old prefix and old chunks cover it.
  const covered = (from: number, to: number): boolean => {
    let pos = from
    while (pos < to) {
      if (pos < meta.prefix) pos = meta.prefix
      else {
        const k = Math.floor(pos / meta.chunkSize)
        if (old === undefined || !old.has(k)) return false
        pos = (k + 1) * meta.chunkSize
      }
    }
    return true
  }
  for (let i = 0; i < bf.length; i++) {
    if (covered(i * chunkSize, Math.min(meta.size, (i + 1) * chunkSize))) bf.set(i)
  }
  return bf
}

function decodeWritten(base64: string, length: number): Bitfield | undefined {
  try {
    return Bitfield.decode(Buffer.from(base64, 'base64'), length)
  } catch {
    return undefined
  }
}

/** Whether every promise resolved within `ms` (they never reject). */
function settledWithin(promises: readonly Promise<void>[], ms: number): Promise<boolean> {
  if (promises.length === 0) return Promise.resolve(true)
  const { promise, resolve } = Promise.withResolvers<boolean>()
  const timer = setTimeout(() => resolve(false), ms)
  timer.unref()
  void Promise.all(promises).then(() => {
    clearTimeout(timer)
    resolve(true)
  })
  return promise
}

async function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p
  signal.throwIfAborted()
  const { promise, reject } = Promise.withResolvers<never>()
  const onAbort = (): void => reject(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await Promise.race([p, promise])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
