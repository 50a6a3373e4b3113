/**
 * Buffers a sender reads chunks into, handed back once the chunk has left. Serving a blob allocated a fresh 1 MiB
 * buffer per chunk; V8 counts each as external memory and answers the growth with full collections: a relaying
 * agent spent 42 % of its busy time in the garbage collector while serving (bench/datapath, `--cpu-prof`).
 * Kept per exact length (a blob's chunks all have one size but the last), up to `maxBytes` idle in all, and let go
 * of once none was taken for `idleMs`: an agent that served a burst does not keep its buffers for good.
 */
export class ChunkBuffers {
  readonly #maxBytes: number
  readonly #idleMs: number
  readonly #shared: boolean
  readonly #free = new Map<number, Buffer[]>()
  /** Buffers handed out and not given back: only these are taken back, each once. */
  readonly #out = new WeakSet<Uint8Array>()
  #freeBytes = 0
  #timer: NodeJS.Timeout | undefined
  #taken = false

  /**
   * `shared`: buffers over shared memory (SharedArrayBuffer), which a hashing thread reads in place instead of
   * being sent a copy (see HashPool).
   */
  constructor(opts: { maxBytes: number; idleMs: number; shared?: boolean }) {
    this.#maxBytes = opts.maxBytes
    this.#idleMs = opts.idleMs
    this.#shared = opts.shared === true
  }

  /** A buffer of exactly `length` bytes, not zeroed: the caller fills all of it before anyone reads it. */
  take(length: number): Buffer {
    this.#taken = true
    const list = this.#free.get(length)
    const reused = list?.pop()
    if (reused !== undefined) {
      this.#freeBytes -= length
      if (list!.length === 0) this.#free.delete(length)
      this.#out.add(reused)
      return reused
    }
    // Its own memory, not a slice of Node's shared pool: a buffer given back must not alias anyone else's bytes.
    const fresh = this.#shared ? Buffer.from(new SharedArrayBuffer(length)) : Buffer.allocUnsafeSlow(length)
    this.#out.add(fresh)
    return fresh
  }

  /**
   * Gives a buffer back once nothing refers to its bytes any more (sent, or written to disk). Anything else is
   * ignored: bytes this pool did not hand out, or one already given back.
   */
  give(bytes: Uint8Array): void {
    if (!this.#out.delete(bytes)) return
    const buffer = bytes as Buffer
    if (this.#freeBytes + buffer.byteLength > this.#maxBytes) return
    const list = this.#free.get(buffer.byteLength)
    if (list === undefined) this.#free.set(buffer.byteLength, [buffer])
    else list.push(buffer)
    this.#freeBytes += buffer.byteLength
    this.#arm()
  }

  /** Every `idleMs`, while buffers are held: none taken since the last look → let them all go. */
  #arm(): void {
    if (this.#timer !== undefined) return
    this.#taken = false
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (this.#taken) return this.#freeBytes > 0 ? this.#arm() : undefined
      this.#free.clear()
      this.#freeBytes = 0
    }, this.#idleMs)
    this.#timer.unref()
  }

  /** Bytes held for reuse. */
  get idleBytes(): number {
    return this.#freeBytes
  }
}
