import { availableParallelism } from 'node:os'
import { isMarkedAsUntransferable, Worker } from 'node:worker_threads'
import { type Digest, type DigestAlgorithm, Digester, digestAlgorithm } from '../oci/digest.ts'
import {
  HASH_BACKLOG_BYTES,
  HASH_WORKER_IDLE_MS,
  HASH_WORKER_OLD_MB,
  HASH_WORKER_YOUNG_MB,
  HASH_WORKERS_MAX,
} from './constants.ts'

/** The whole-blob hash of one blob, fed in blob order. */
export interface BlobHasher {
  /**
   * The next bytes of the blob. `transfer`: the caller gives these pieces up (nothing reads them again, and no other
   * view shares their memory past their ends): their memory may move to a hashing thread, leaving them empty here.
   * Pieces over shared memory (SharedArrayBuffer, see HashPool.sharedBuffer) are read in place by the hashing
   * thread: the promise returned then resolves once it has hashed them, and the caller changes them only after.
   * Returns a promise when the hashing thread is behind (HASH_BACKLOG_BYTES): wait for it before giving more.
   */
  update(pieces: readonly Uint8Array[], opts?: { transfer?: boolean }): Promise<void> | undefined
  /** The digest of every byte given, in the algorithm of the expected digest; the hasher is spent after it. */
  digest(): Promise<Digest>
  /** Forgets the bytes given (the blob is discarded, or its hash starts over). */
  drop(): void
}

/** Where blob hashes run: on the calling thread, or on worker threads. */
export interface HashPool {
  hasher(expected: Digest): BlobHasher
  /**
   * A buffer of `length` bytes its hashing threads read in place (no copy per update), when the pool has threads;
   * its owner waits for update()'s promise before it reuses it.
   */
  sharedBuffer?(length: number): Uint8Array
  /** Stops the pool's threads; hashers still open fail their digest(). */
  stop(): Promise<void>
}

/** Hashes on the calling thread, as each piece is given: what a store does without a pool. */
export const inlineHashing: HashPool = {
  hasher(expected) {
    let digester: Digester | undefined = Digester.for(expected)
    return {
      update(pieces, opts = {}) {
        for (const piece of pieces) digester?.update(piece)
        if (opts.transfer === true) for (const piece of pieces) free(piece)
        return undefined
      },
      digest() {
        if (digester === undefined) return Promise.reject(new Error('hasher already spent'))
        const d = digester.digest()
        digester = undefined
        return Promise.resolve(d)
      },
      drop() {
        digester = undefined
      },
    }
  },
  stop: () => Promise.resolve(),
}

type ToWorker =
  | { readonly op: 'open'; readonly id: number; readonly algorithm: DigestAlgorithm }
  | { readonly op: 'update'; readonly id: number; readonly pieces: readonly Uint8Array[] }
  | { readonly op: 'digest'; readonly id: number }
  | { readonly op: 'drop'; readonly id: number }
type FromWorker = { readonly id: number; readonly hex?: string; readonly error?: string }

/**
 * The hashing thread's code, plain JavaScript evaluated in the worker: a `.ts` entry would load Node's type
 * stripper into the thread, tens of MiB of WebAssembly memory for a dozen lines.
 */
const WORKER_SOURCE = `
const { createHash } = require('node:crypto')
const { parentPort, workerData } = require('node:worker_threads')
const hashed = new BigInt64Array(workerData)
const hashes = new Map()
parentPort.on('message', (m) => {
  if (m.op === 'open') hashes.set(m.id, createHash(m.algorithm))
  else if (m.op === 'update') {
    const hash = hashes.get(m.id)
    if (hash !== undefined) for (const piece of m.pieces) hash.update(piece)
    let bytes = 0
    for (const piece of m.pieces) bytes += piece.byteLength
    // Every other buffer here is this thread's own (moved or copied to it): freed now rather than by a collection.
    // Shared memory is read in place and stays its owner's.
    for (const piece of m.pieces) if (piece.buffer instanceof ArrayBuffer && !piece.buffer.detached) piece.buffer.transfer(0)
    Atomics.add(hashed, 0, BigInt(bytes))
    Atomics.notify(hashed, 0)
  } else if (m.op === 'digest') {
    const hash = hashes.get(m.id)
    hashes.delete(m.id)
    parentPort.postMessage(hash === undefined ? { id: m.id, error: 'unknown hash ' + m.id } : { id: m.id, hex: hash.digest('hex') })
  } else if (m.op === 'drop') hashes.delete(m.id)
})
`

interface Thread {
  readonly worker: Worker
  /** Hashers open on it. */
  sessions: number
  /** digest() calls waiting for its answer, by hasher id. */
  readonly waiting: Map<number, PromiseWithResolvers<Digest>>
  /** Bytes posted to it, and (written by the thread) bytes it has hashed. */
  posted: number
  readonly hashed: BigInt64Array
  /** Callers waiting for its backlog to shrink. */
  draining: number
  idle: NodeJS.Timeout | undefined
  failed: Error | undefined
}

export interface WorkerHashPoolOptions {
  /** Threads at most (default: the cores beyond the main thread's, at least 1, at most HASH_WORKERS_MAX). */
  readonly threads?: number
  /** A thread with no hasher open stops after this long (default HASH_WORKER_IDLE_MS). */
  readonly idleMs?: number
  /** Bytes a thread may be behind before update() asks its caller to wait (default HASH_BACKLOG_BYTES). */
  readonly backlogBytes?: number
}

/**
 * SHA-256 (or -512) of whole blobs on worker threads, so a node's main thread only moves bytes and a node with more
 * cores is not limited to one for hashing. Each blob's hash lives on one thread, fed in order; threads start on first
 * use and stop when idle. Bytes given up by the caller (`transfer`) move to the thread without a copy: their memory
 * is then the thread's to free, not the main heap's (whose collector would otherwise run full collections to free
 * large amounts of short-lived buffer memory). Other bytes are copied, once.
 */
export class WorkerHashPool implements HashPool {
  readonly #max: number
  readonly #idleMs: number
  readonly #backlogBytes: number
  readonly #threads = new Set<Thread>()
  #nextId = 1
  #stopped = false

  constructor(opts: WorkerHashPoolOptions = {}) {
    this.#max = Math.max(1, opts.threads ?? Math.min(HASH_WORKERS_MAX, availableParallelism() - 1))
    this.#idleMs = opts.idleMs ?? HASH_WORKER_IDLE_MS
    this.#backlogBytes = opts.backlogBytes ?? HASH_BACKLOG_BYTES
  }

  sharedBuffer(length: number): Uint8Array {
    return Buffer.from(new SharedArrayBuffer(length))
  }

  /** Threads running now (for tests and status). */
  get threads(): number {
    return this.#threads.size
  }

  hasher(expected: Digest): BlobHasher {
    if (this.#stopped) throw new Error('hash pool stopped')
    const thread = this.#pick()
    const id = this.#nextId++
    thread.sessions++
    if (thread.idle !== undefined) clearTimeout(thread.idle)
    thread.idle = undefined
    this.#post(thread, { op: 'open', id, algorithm: digestAlgorithm(expected) })
    let open = true
    const release = (): void => {
      if (!open) return
      open = false
      if (--thread.sessions === 0 && thread.failed === undefined) {
        thread.idle = setTimeout(() => this.#stop(thread), this.#idleMs)
        thread.idle.unref()
      }
    }
    return {
      update: (pieces, opts = {}) => {
        if (!open || thread.failed !== undefined || pieces.length === 0) return undefined
        for (const piece of pieces) thread.posted += piece.byteLength
        const shared = sendPieces(thread.worker, id, pieces, opts.transfer === true)
        if (shared) return this.#drained(thread, thread.posted)
        return backlog(thread) > this.#backlogBytes ? this.#drained(thread) : undefined
      },
      digest: () => {
        if (!open) return Promise.reject(new Error('hasher already spent'))
        if (thread.failed !== undefined) {
          release()
          return Promise.reject(thread.failed)
        }
        const answer = Promise.withResolvers<Digest>()
        const algorithm = digestAlgorithm(expected)
        thread.waiting.set(id, answer)
        this.#hold(thread)
        this.#post(thread, { op: 'digest', id })
        return answer.promise.then((hex) => `${algorithm}:${hex}` as Digest).finally(release)
      },
      drop: () => {
        if (!open) return
        if (thread.failed === undefined) this.#post(thread, { op: 'drop', id })
        release()
      },
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all([...this.#threads].map((t) => this.#stop(t)))
  }

  #pick(): Thread {
    let best: Thread | undefined
    for (const t of this.#threads)
      if (t.failed === undefined && (best === undefined || t.sessions < best.sessions)) best = t
    if (best !== undefined && (best.sessions === 0 || this.#threads.size >= this.#max)) return best
    return this.#start()
  }

  #start(): Thread {
    const hashed = new BigInt64Array(new SharedArrayBuffer(8))
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: hashed.buffer,
      name: 'shoal-hash',
      resourceLimits: { maxYoungGenerationSizeMb: HASH_WORKER_YOUNG_MB, maxOldGenerationSizeMb: HASH_WORKER_OLD_MB },
    })
    worker.unref()
    const thread: Thread = {
      worker,
      sessions: 0,
      waiting: new Map(),
      posted: 0,
      hashed,
      draining: 0,
      idle: undefined,
      failed: undefined,
    }
    this.#threads.add(thread)
    worker.on('message', (m: FromWorker) => {
      const answer = thread.waiting.get(m.id)
      if (answer === undefined) return
      thread.waiting.delete(m.id)
      this.#hold(thread)
      if (m.hex !== undefined) answer.resolve(m.hex as Digest)
      else answer.reject(new Error(`hashing thread: ${m.error}`))
    })
    worker.on('error', (err) => this.#fail(thread, err))
    worker.on('exit', (code) => this.#fail(thread, new Error(`hashing thread exited (code ${code})`)))
    return thread
  }

  async #stop(thread: Thread): Promise<void> {
    if (thread.idle !== undefined) clearTimeout(thread.idle)
    thread.idle = undefined
    this.#threads.delete(thread)
    await thread.worker.terminate()
    this.#fail(thread, new Error('hashing thread stopped'))
  }

  /** The thread is gone: its hashes are lost, their digests fail. */
  #fail(thread: Thread, err: Error): void {
    if (thread.failed !== undefined) return
    thread.failed = err
    this.#threads.delete(thread)
    if (thread.idle !== undefined) clearTimeout(thread.idle)
    for (const answer of thread.waiting.values()) answer.reject(err)
    thread.waiting.clear()
  }

  /**
   * Resolves once the thread's backlog is back under the limit (with `through`: once it has hashed that many bytes
   * of all posted to it), or the thread is gone.
   */
  async #drained(thread: Thread, through?: number): Promise<void> {
    thread.draining++
    this.#hold(thread)
    try {
      while (thread.failed === undefined) {
        const done = Atomics.load(thread.hashed, 0)
        if (through === undefined ? thread.posted - Number(done) <= this.#backlogBytes : Number(done) >= through) return
        // Bounded, so a thread that died between the check and the wait cannot hold this forever.
        const wait = Atomics.waitAsync(thread.hashed, 0, done, 1_000)
        if (wait.async) await wait.value
      }
    } finally {
      thread.draining--
      this.#hold(thread)
    }
  }

  /** Only a caller waiting on the thread keeps the process alive; an idle thread never does. */
  #hold(thread: Thread): void {
    if (thread.waiting.size > 0 || thread.draining > 0) thread.worker.ref()
    else thread.worker.unref()
  }

  #post(thread: Thread, m: ToWorker): void {
    if (thread.failed === undefined) thread.worker.postMessage(m)
  }
}

/**
 * Posts the pieces to the thread. Given up (`transfer`), a piece's memory moves when nothing of it lies past the
 * piece's end (whatever lies before it was given earlier, or is not blob bytes: an HTTP head); any other piece, and
 * everything when a buffer refuses to move (Node's shared pool), is copied into memory of its own that moves.
 * Pieces over shared memory go as they are (the thread reads them in place): returns whether there were any.
 */
function sendPieces(worker: Worker, id: number, pieces: readonly Uint8Array[], transfer: boolean): boolean {
  const moved = new Set<ArrayBuffer>()
  const out: Uint8Array[] = []
  let shared = false
  for (const piece of pieces) {
    if (piece.buffer instanceof SharedArrayBuffer) {
      shared = true
      out.push(piece)
    } else if (transfer && movable(piece)) {
      moved.add(piece.buffer as ArrayBuffer)
      out.push(piece)
    } else out.push(copyOf(piece))
  }
  const list: ArrayBuffer[] = [...moved]
  for (let i = 0; i < out.length; i++) if (out[i] !== pieces[i]) list.push(out[i]!.buffer as ArrayBuffer)
  const m: ToWorker = { op: 'update', id, pieces: out }
  try {
    worker.postMessage(m, list)
  } catch {
    // A buffer that may not move (Node's pool): nothing moved; copy all but shared memory.
    const copies = pieces.map((p) => (p.buffer instanceof SharedArrayBuffer ? p : copyOf(p)))
    worker.postMessage(
      { op: 'update', id, pieces: copies } satisfies ToWorker,
      copies.filter((c) => c.buffer instanceof ArrayBuffer).map((c) => c.buffer as ArrayBuffer),
    )
  }
  return shared
}

/**
 * Frees a given-up piece's memory now when nothing of it lies past the piece's end: a fresh buffer per socket read
 * would otherwise wait for a collection, and V8 answers a lot of such memory with full collections of the heap.
 * The caller guarantees nothing reads the piece, or anything before it in its buffer, again.
 */
export function free(piece: Uint8Array): void {
  if (movable(piece)) (piece.buffer as ArrayBuffer).transfer(0)
}

/**
 * Whether a given-up piece's buffer may be taken whole: nothing of it lies past the piece's end, and it is not Node's
 * shared pool (small buffers of unrelated owners side by side: detached, they would all be emptied).
 */
function movable(piece: Uint8Array): boolean {
  const buffer = piece.buffer
  return (
    buffer instanceof ArrayBuffer &&
    !buffer.detached &&
    piece.byteOffset + piece.byteLength === buffer.byteLength &&
    !isMarkedAsUntransferable(buffer)
  )
}

function backlog(thread: Thread): number {
  return thread.posted - Number(Atomics.load(thread.hashed, 0))
}

function copyOf(piece: Uint8Array): Uint8Array {
  return new Uint8Array(piece)
}
