import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { Digest } from '../../shared/oci/index.ts'
import type { Upstream } from '../../shared/origin/index.ts'
import { type ContentStore, FileStream, type PartialBlob } from '../../shared/store/index.ts'
import type { BlobFiller } from './service.ts'
import { nodeHttp } from '../../shared/process/node-http.ts'

/**
 * One in-flight download of one blob. Writers (origin, swarm) fill `partial`; any number of readers stream the
 * bytes already on disk and wait for more (the partial's own follow()). A failed download aborts every reader
 * with its error, so a client never sees a clean end on bytes that failed their digest.
 */
export class Download {
  readonly digest: Digest
  readonly #store: ContentStore
  #partial: PartialBlob | undefined
  #size: number | undefined
  #state: 'starting' | 'running' | 'committed' | 'failed' = 'starting'
  #error: unknown
  #verifiedPerChunk = false
  /** Bumped by every attach and by the end of the download: a reader then looks again at what to follow. */
  #generation = 0
  readonly #followers = new Set<AbortController>()
  /** Partials whose bytes failed the blob digest, and why. */
  readonly #distrusted = new Map<PartialBlob, unknown>()
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
    this.#sized.resolve(partial.size)
    // Readers following another partial, or this one under other terms (swarm → origin), start again from where
    // they are.
    this.#changed()
  }

  distrust(partial: PartialBlob, err: unknown): void {
    this.#distrusted.set(partial, err)
    this.#changed()
  }

  committed(): void {
    this.#state = 'committed'
    this.#finish.resolve()
    this.#changed()
  }

  fail(err: unknown): void {
    if (this.#state === 'committed' || this.#state === 'failed') return
    this.#state = 'failed'
    this.#error = err
    this.#sized.reject(err)
    this.#finish.reject(err)
    this.#changed()
  }

  /**
   * Streams bytes [start, end) as they become available: follows the partial while the download runs and reads
   * the committed blob afterwards. Unless each chunk was verified on arrival, the response's last byte waits for
   * the whole-blob digest: a client that has every byte of a Content-Length response takes it as complete, so a
   * failed digest must abort the response before that, never after.
   */
  reader(start: number, end: number): DownloadReader {
    return new DownloadReader(start, (cursor) => this.#sources(cursor, end))
  }

  /**
   * The streams that make up bytes [cursor.pos, end), one after the other: followers of the partial while the
   * download runs, then a read of the committed blob. The consumer moves `cursor.pos` past every byte it hands on;
   * when a source fails it throws the error into this generator (`throw()`), which starts the next source from
   * `cursor.pos` when the download moved on (re-attached, committed, partial swapped), else rethrows.
   */
  async *#sources(cursor: { pos: number }, end: number): AsyncGenerator<Readable, void, void> {
    /** The partials this reader passed bytes on from. */
    const readFrom = new Set<PartialBlob>()
    while (cursor.pos < end) {
      if (this.#state === 'failed') throw this.#error
      for (const p of readFrom) if (this.#distrusted.has(p)) throw this.#distrusted.get(p)
      const partial = this.#partial
      // The partial may be committed a moment before the filler returns: read the store then too.
      if (this.#state === 'committed' || partial?.state === 'committed') {
        const res = await this.#store.read(this.digest, { start: cursor.pos, end })
        if (res === undefined) throw new Error(`blob ${this.digest} vanished after commit`)
        yield res.stream
        return
      }
      const generation = this.#generation
      if (partial === undefined || (partial.state !== 'open' && partial.state !== 'committing')) {
        // Between a discarded partial and the next one (the origin started over), or before the first.
        await this.#next(generation)
        continue
      }
      const stop = new AbortController()
      this.#followers.add(stop)
      try {
        const from = cursor.pos
        try {
          yield partial.follow(
            { start: cursor.pos, end },
            { holdLastByte: !this.#verifiedPerChunk, signal: stop.signal },
          )
        } finally {
          if (cursor.pos > from) readFrom.add(partial)
        }
        return
      } catch (err) {
        // (re-read: the state may have changed while the follower ran)
        const now: string = this.#state
        if (now === 'failed') throw this.#error
        if (this.#distrusted.has(partial) && readFrom.has(partial)) throw this.#distrusted.get(partial)
        // Re-attached, committed, or the partial was discarded for another: look again from `pos`.
        if (this.#generation !== generation || now === 'committed' || partial.state !== 'open') continue
        throw err
      } finally {
        this.#followers.delete(stop)
      }
    }
  }

  #changed(): void {
    this.#generation++
    for (const f of [...this.#followers]) f.abort()
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const w of waiters) w()
  }

  /** Resolves once something changed since `generation`. */
  #next(generation: number): Promise<void> {
    if (this.#generation !== generation) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.add(resolve))
  }

  /** Known size, if any (undefined until the source answered). */
  get knownSize(): number | undefined {
    return this.#size
  }
}

type Sources = (cursor: { pos: number }) => AsyncGenerator<Readable, void, void>

/**
 * A reader of a download: bytes [start, end) from the sources the download hands out, in turn. Piped to an HTTP
 * response or a socket, each source is piped straight to it (a file stream then sends from a few reused buffers,
 * see FileStream); any other consumer reads a plain Readable of the sources' pieces.
 */
export class DownloadReader extends Readable {
  readonly #start: number
  readonly #sources: Sources
  readonly #cursor: { pos: number }
  #started = false
  #current: Readable | undefined

  constructor(start: number, sources: Sources) {
    super({ highWaterMark: 1024 * 1024 })
    this.#start = start
    this.#cursor = { pos: start }
    this.#sources = sources
  }

  /** Bytes handed on so far (to the socket, on the direct path). */
  get sent(): number {
    return this.#cursor.pos - this.#start
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
    const direct = dest instanceof nodeHttp.ServerResponse || dest instanceof Socket
    if (!direct || this.#started || this.destroyed) return super.pipe(dest, opts)
    this.#started = true
    dest.emit('pipe', this)
    this.#send(dest, opts?.end !== false).then(
      () => {
        // Ends the Readable side as well ('end', then 'close'), for whoever waits on it.
        this.push(null)
        this.resume()
      },
      (err: unknown) => this.destroy(err as Error),
    )
    return dest
  }

  override _read(): void {
    if (this.#started) {
      this.#current?.resume()
      return
    }
    this.#started = true
    this.#pull().then(
      () => this.push(null),
      (err: unknown) => this.destroy(err as Error),
    )
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#current?.destroy()
    cb(err)
  }

  async #send(dest: ServerResponse | Socket, end: boolean): Promise<void> {
    await this.#each(async (source) => {
      await new Promise<void>((resolve, reject) => {
        source.once('end', resolve)
        source.once('error', reject)
        source.once('close', () => reject(new Error('source closed before its end')))
        source.pipe(dest, { end: false })
      }).finally(() => {
        if (source instanceof FileStream) this.#cursor.pos = source.position
      })
      if (dest.destroyed) throw new Error('the response was closed')
    })
    if (end) dest.end()
  }

  /** The plain Readable path: every piece pushed (and counted), pausing the source while this stream is full. */
  async #pull(): Promise<void> {
    await this.#each(
      (source) =>
        new Promise<void>((resolve, reject) => {
          source.on('data', (b: Uint8Array) => {
            this.#cursor.pos += b.byteLength
            if (!this.push(b)) source.pause()
          })
          source.once('end', resolve)
          source.once('error', reject)
          source.once('close', () => reject(new Error('source closed before its end')))
        }),
    )
  }

  async #each(consume: (source: Readable) => Promise<void>): Promise<void> {
    const it = this.#sources(this.#cursor)
    try {
      let next = await it.next()
      while (next.done !== true) {
        const source = next.value
        if (this.destroyed) {
          source.destroy()
          throw new Error('reader destroyed')
        }
        this.#current = source
        try {
          await consume(source)
          next = await it.next()
        } catch (err) {
          source.destroy()
          next = await it.throw(err)
        }
      }
    } finally {
      this.#current = undefined
      await it.return()
    }
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

  /**
   * Joins or starts a download no client asked for (a preheat's prefetch, an elected agent seeding its peers): the
   * whole blob through the fill policy, with no client's credentials.
   */
  joinUnasked(
    store: ContentStore,
    fill: BlobFiller,
    blob: { readonly upstream: Upstream; readonly name: string; readonly digest: Digest },
    signal: AbortSignal,
  ): { download: Download; started: boolean } {
    return this.join(blob.digest, store, (dl) =>
      fill(dl, { method: 'GET', ...blob, range: undefined, authorization: undefined, signal }),
    )
  }

  list(): readonly Download[] {
    return [...this.#inflight.values()]
  }
}
