import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { Readable } from 'node:stream'
import { type Digest, isDigest } from '../oci/digest.ts'
import { InvalidDigestError } from '../oci/errors.ts'
import type { RandomAccessFile } from './backend.ts'
import { READ_PIECE_BYTES, SEND_PIECES } from './constants.ts'
import { InvalidRangeError } from './errors.ts'
import type { ByteRange } from './index.ts'
import { nodeHttp } from '../process/node-http.ts'

/** The type says Digest, but callers can cast anything: paths are built from digests, so check again. */
export function assertDigest(digest: Digest): void {
  if (typeof digest !== 'string' || !isDigest(digest)) throw new InvalidDigestError(String(digest))
}

export function checkRange(range: ByteRange, size: number): void {
  const { start, end } = range
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > size) {
    throw new InvalidRangeError(start, end, size)
  }
}

export async function readFully(file: RandomAccessFile, into: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < into.byteLength) {
    const n = await file.read(into.subarray(done), position + done)
    if (n === 0) throw new Error(`unexpected end of file at ${position + done}`)
    done += n
  }
}

/** A file shared by a partial and its readers: closed when the last holder lets go. */
export class SharedFile<F extends RandomAccessFile> {
  readonly file: F
  #refs = 1

  constructor(file: F) {
    this.file = file
  }

  get closed(): boolean {
    return this.#refs === 0
  }

  /** Another holder; the returned function lets go (once). */
  acquire(): () => void {
    if (this.#refs === 0) throw new Error('file already closed')
    this.#refs++
    return once(() => this.release())
  }

  /** Lets go of the creator's reference. */
  release(): void {
    if (this.#refs === 0) return
    if (--this.#refs === 0) this.file.close().catch(() => {})
  }
}

export function once(fn: () => void): () => void {
  let done = false
  return () => {
    if (done) return
    done = true
    fn()
  }
}

/**
 * Streams bytes [start, end) of a file in READ_PIECE_BYTES pieces. `release` runs once when the stream closes,
 * errors or is destroyed. `available(pos)` (default: end) says how far bytes can be read now; when it is not
 * past `pos`, the stream waits for `waitFor` to call it back.
 */
export function fileStream(
  file: RandomAccessFile,
  range: ByteRange,
  release: () => void,
  follow?: {
    available(position: number): number
    /** Calls `wake` once when more may be available; throws (to fail the stream) when no more will come. */
    waitFor(wake: () => void): void
    /**
     * Hears each append's bytes as they land, before any wake (the file's writer gave them up: see AppendTap);
     * returns the unsubscribe. Only the send path uses it: the bytes go to the socket without reading them back.
     */
    tap?(tap: AppendTap): () => void
  },
): FileStream {
  return new FileStream(file, range, release, follow)
}

/**
 * A file range as a Readable. Piped to an HTTP response or a socket before anything read it, it sends without
 * the Readable machinery: SEND_PIECES buffers read from the file in turn, each read into again once the socket
 * has taken its bytes (the write callback); a stream following a file still being written does the same, as far
 * as the bytes are there. A new buffer per piece costs more than the send itself: fresh pages
 * to fault in and zero, and garbage collections driven by external memory (bench/datapath, bench/mirror/README).
 * Any other consumer gets a plain Readable of fresh pieces.
 */
export class FileStream extends Readable {
  readonly #file: RandomAccessFile
  readonly #end: number
  readonly #follow: Parameters<typeof fileStream>[3]
  readonly #release: () => void
  #position: number
  #readStarted = false
  #sending = false
  /** Bytes handed to the consumer (pushed, or taken by the socket on the send path). */
  #sent = 0

  constructor(
    file: RandomAccessFile,
    range: ByteRange,
    release: () => void,
    follow?: Parameters<typeof fileStream>[3],
  ) {
    super({ highWaterMark: READ_PIECE_BYTES })
    this.#file = file
    this.#end = range.end
    this.#position = range.start
    this.#release = release
    this.#follow = follow
  }

  get sent(): number {
    return this.#sent
  }

  /** Where the next read starts: every byte before it was pushed, or handed to the socket on the send path. */
  get position(): number {
    return this.#position
  }

  override _read(): void {
    this.#readStarted = true
    if (!this.#sending) this.#pump()
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#untap()
    this.#release()
    cb(err)
  }

  #untap: () => void = () => {}

  override pipe<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
    const direct = dest instanceof nodeHttp.ServerResponse || dest instanceof Socket
    if (!direct || this.#readStarted || this.#sending || this.destroyed) {
      return super.pipe(dest, opts)
    }
    this.#sending = true
    dest.emit('pipe', this)
    this.#send(dest, opts?.end !== false)
    return dest
  }

  #send(dest: ServerResponse | Socket, end: boolean): void {
    // A small blob (a config, a manifest-sized layer) gets one buffer of its own size, not four of the full size.
    const length = this.#end - this.#position
    const pieceBytes = Math.max(1, Math.min(READ_PIECE_BYTES, length))
    const pieces = Math.max(1, Math.min(SEND_PIECES, Math.ceil(length / pieceBytes)))
    const free = Array.from({ length: pieces }, () => Buffer.allocUnsafeSlow(pieceBytes))
    const follow = this.#follow
    let reading = false
    let waiting = false
    let writing = 0
    let done = false
    /** Bytes taken from an append are in the socket, not yet called back. */
    let teeing = false
    const wake = (): void => {
      waiting = false
      pump()
    }
    // Following a file still being written: bytes that land exactly where this stream stands go to the socket as
    // they are, not read back from the file. One batch at a time: a socket that has not taken the last one is left
    // to the reads (its client is slower than the file fills), so a tap holds the writer's pieces for one write.
    const tap: AppendTap = (offset, pieces) => {
      if (this.destroyed || done || reading || teeing || offset !== this.#position || dest.destroyed) return undefined
      const limit = Math.min(this.#end, follow!.available(this.#position))
      let length = 0
      for (const piece of pieces) length += piece.byteLength
      const n = Math.min(length, limit - offset)
      if (n <= 0) return undefined
      const out = length === n ? pieces : slicePieces(pieces, 0, n)
      const { promise, resolve } = Promise.withResolvers<void>()
      teeing = true
      writing++
      this.#position += n
      let left = out.length
      let failed = false
      // A response whose socket is gone may never call its writes back (Node's OutgoingMessage drops them): its
      // close lets go of the pieces, so the writer's buffer is given back rather than left to the collector.
      const gone = (): void => resolve()
      dest.once('close', gone)
      const written = (err?: Error | null): void => {
        if (err) failed = true
        if (--left > 0) return
        dest.off('close', gone)
        writing--
        teeing = false
        resolve()
        if (failed) {
          this.destroy()
          return
        }
        this.#sent += n
        pump()
      }
      dest.cork()
      for (const piece of out) dest.write(piece, written)
      dest.uncork()
      return promise
    }
    if (follow?.tap !== undefined) this.#untap = follow.tap(tap)
    const pump = (): void => {
      if (this.destroyed || done) return
      if (this.#position >= this.#end) {
        if (reading || writing > 0) return
        done = true
        this.#untap()
        if (end) dest.end()
        // Ends the Readable side as well ('end', then 'close' and the release), for whoever waits on it.
        this.push(null)
        this.resume()
        return
      }
      if (reading || waiting || free.length === 0) return
      // Following a file still being written: only as far as its bytes are there, then wait for more.
      const limit = follow === undefined ? this.#end : Math.min(this.#end, follow.available(this.#position))
      if (limit <= this.#position) {
        waiting = true
        try {
          follow!.waitFor(wake)
        } catch (err) {
          this.destroy(err as Error)
        }
        return
      }
      reading = true
      const piece = free.pop()!
      const want = Math.min(piece.byteLength, limit - this.#position)
      this.#file.read(piece.subarray(0, want), this.#position).then(
        (n) => {
          reading = false
          if (this.destroyed) return
          if (n === 0) {
            this.destroy(new Error(`unexpected end of file at ${this.#position}`))
            return
          }
          this.#position += n
          writing++
          dest.write(n === piece.byteLength ? piece : piece.subarray(0, n), (err) => {
            writing--
            if (err) {
              // The response broke (the client went away): its owner sees that on the response, as with
              // pipe(); the source only stops and lets go of the file.
              this.destroy()
              return
            }
            this.#sent += n
            // Only now is the piece free: the socket has handed its bytes to the kernel.
            free.push(piece)
            pump()
          })
          pump()
        },
        (err: Error) => this.destroy(err),
      )
    }
    pump()
  }

  #pump(): void {
    if (this.destroyed) return
    if (this.#position >= this.#end) {
      this.push(null)
      return
    }
    const follow = this.#follow
    const limit = follow === undefined ? this.#end : Math.min(this.#end, follow.available(this.#position))
    if (limit <= this.#position) {
      try {
        follow?.waitFor(() => this.#pump())
      } catch (err) {
        this.destroy(err as Error)
      }
      return
    }
    const piece = Buffer.allocUnsafe(Math.min(READ_PIECE_BYTES, limit - this.#position))
    this.#file.read(piece, this.#position).then(
      (n) => {
        if (n === 0) {
          this.destroy(new Error(`unexpected end of file at ${this.#position}`))
          return
        }
        this.#position += n
        this.#sent += n
        this.push(n === piece.byteLength ? piece : piece.subarray(0, n))
      },
      (err: Error) => this.destroy(err),
    )
  }
}

/**
 * Takes an append's bytes as they land at `offset` (views, in order) and sends them on, or returns undefined to leave
 * them. A returned promise holds the pieces until it resolves (it must resolve, never reject): their memory is not
 * handed on (the hash may move it to its thread) before.
 */
export type AppendTap = (offset: number, pieces: readonly Uint8Array[]) => Promise<void> | undefined

/** Bytes [from, to) of the pieces laid back to back, as views (no copy). */
export function slicePieces(pieces: readonly Uint8Array[], from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let offset = 0
  for (const piece of pieces) {
    const next = offset + piece.byteLength
    if (next > from && offset < to) {
      out.push(piece.subarray(Math.max(0, from - offset), Math.min(piece.byteLength, to - offset)))
    }
    offset = next
    if (offset >= to) break
  }
  return out
}
