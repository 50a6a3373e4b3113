import { Readable } from 'node:stream'
import type { Digest } from '../../shared/oci/index.ts'
import type { ContentStore, PartialBlob } from '../../shared/store/index.ts'

/** How long a reader reads from one partial-file range before it checks state again. */
const READ_SLICE_BYTES = 4 * 1024 * 1024

/**
 * One in-flight download of one blob. Writers (origin, swarm) fill `partial`; any number of
 * readers stream the bytes already on disk and wait for more. A failed download aborts every
 * reader with its error, so a client never sees a clean end on bytes that failed their digest.
 */
export class Download {
  readonly digest: Digest
  readonly #store: ContentStore
  #partial: PartialBlob | undefined
  #size: number | undefined
  #state: 'starting' | 'running' | 'committed' | 'failed' = 'starting'
  #error: unknown
  #verifiedPerChunk = false
  #waiters = new Set<() => void>()
  readonly #sized: PromiseWithResolvers<number>
  readonly finished: Promise<void>
  #finish!: PromiseWithResolvers<void>

  constructor(digest: Digest, store: ContentStore) {
    this.digest = digest
    this.#store = store
    this.#sized = Promise.withResolvers<number>()
    this.#sized.promise.catch(() => {})
    this.#finish = Promise.withResolvers<void>()
    this.finished = this.#finish.promise
    this.finished.catch(() => {})
  }

  /** Resolves with the blob size once the source knows it; rejects if the download fails first. */
  get size(): Promise<number> {
    return this.#sized.promise
  }

  get state(): 'starting' | 'running' | 'committed' | 'failed' {
    return this.#state
  }

  get error(): unknown {
    return this.#error
  }

  get partial(): PartialBlob | undefined {
    return this.#partial
  }

  /**
   * The writer attaches the partial once it knows the size. `verifiedPerChunk`: every chunk is
   * checked against a trusted chunk map before it is written (swarm); otherwise (origin) bytes are
   * only proven by the whole-blob digest at the end.
   */
  attach(partial: PartialBlob, opts: { verifiedPerChunk?: boolean } = {}): void {
    this.#partial = partial
    this.#verifiedPerChunk = opts.verifiedPerChunk ?? false
    this.#size = partial.size
    this.#state = 'running'
    partial.onProgress(() => this.#wake())
    this.#sized.resolve(partial.size)
    this.#wake()
  }

  committed(): void {
    this.#state = 'committed'
    this.#finish.resolve()
    this.#wake()
  }

  fail(err: unknown): void {
    if (this.#state === 'committed' || this.#state === 'failed') return
    this.#state = 'failed'
    this.#error = err
    this.#sized.reject(err)
    this.#finish.reject(err)
    this.#wake()
  }

  /** End (exclusive) of the readable run of bytes that starts at `pos`. */
  availableFrom(pos: number): number {
    const p = this.#partial
    if (p === undefined) return pos
    if (pos < p.prefixBytes) return p.prefixBytes
    let chunk = Math.floor(pos / p.chunkSize)
    while (chunk < p.chunkCount && p.written.has(chunk)) chunk++
    return Math.max(pos, Math.min(p.size, chunk * p.chunkSize))
  }

  /**
   * Streams bytes [start, end) as they become available. Reads from the partial file while the
   * download runs and from the committed blob afterwards. Unless each chunk was verified on
   * arrival, the response's last byte waits for the whole-blob digest: a client that has every
   * byte of a Content-Length response takes it as complete, so a failed digest must abort the
   * response before that, never after.
   */
  reader(start: number, end: number): Readable {
    const reading = { stopped: false }
    const stream = Readable.from(this.#generate(start, end, reading), { objectMode: false, highWaterMark: 1024 * 1024 })
    stream.once('close', () => {
      reading.stopped = true
      this.#wake()
    })
    return stream
  }

  async *#generate(start: number, end: number, reading: { stopped: boolean }): AsyncGenerator<Uint8Array> {
    let pos = start
    while (pos < end && !reading.stopped) {
      if (this.#state === 'failed') throw this.#error
      // The partial may be committed a moment before the filler returns: read the store then too.
      if (this.#state === 'committed' || this.#partial?.state === 'committed') {
        const res = await this.#store.read(this.digest, { start: pos, end })
        if (res === undefined) throw new Error(`blob ${this.digest} vanished after commit`)
        yield* res.stream
        return
      }
      const hold = this.#verifiedPerChunk ? end : end - 1
      const avail = Math.min(this.availableFrom(pos), hold)
      if (avail > pos && this.#partial !== undefined) {
        try {
          for await (const buf of this.#partial.read({ start: pos, end: Math.min(avail, pos + READ_SLICE_BYTES) })) {
            pos += (buf as Uint8Array).byteLength
            yield buf as Uint8Array
          }
        } catch (err) {
          // The partial file is renamed away at commit; carry on from the committed blob.
          // (re-read: the state may have changed while the read was in flight)
          const now: string = this.#state
          if (now !== 'committed' && now !== 'failed') throw err
        }
        continue
      }
      await this.#changed()
    }
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.add(resolve))
  }

  #wake(): void {
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const w of waiters) w()
  }

  /** Known size, if any (undefined until the source answered). */
  get knownSize(): number | undefined {
    return this.#size
  }
}

/** Single flight: concurrent requests for one digest share one Download. */
export class Downloads {
  readonly #inflight = new Map<Digest, Download>()

  get(digest: Digest): Download | undefined {
    return this.#inflight.get(digest)
  }

  /** Returns the running download or starts one with `run`, which must attach, then commit or fail it. */
  join(
    digest: Digest,
    store: ContentStore,
    run: (dl: Download) => Promise<void>,
  ): { download: Download; started: boolean } {
    const existing = this.#inflight.get(digest)
    if (existing !== undefined) return { download: existing, started: false }
    const dl = new Download(digest, store)
    this.#inflight.set(digest, dl)
    const forget = () => {
      if (this.#inflight.get(digest) === dl) this.#inflight.delete(digest)
    }
    run(dl).then(
      () => {
        dl.committed()
        forget()
      },
      (err: unknown) => {
        dl.fail(err)
        forget()
      },
    )
    return { download: dl, started: true }
  }

  list(): readonly Download[] {
    return [...this.#inflight.values()]
  }
}
