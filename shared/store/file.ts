import { Readable } from 'node:stream'
import { type Digest, isDigest } from '../oci/digest.ts'
import { InvalidDigestError } from '../oci/errors.ts'
import type { RandomAccessFile } from './backend.ts'
import { READ_PIECE_BYTES } from './constants.ts'
import { InvalidRangeError } from './errors.ts'
import type { ByteRange } from './index.ts'

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
  },
): Readable {
  let position = range.start
  const stream = new Readable({
    highWaterMark: READ_PIECE_BYTES,
    read() {
      pump()
    },
    destroy(err, cb) {
      release()
      cb(err)
    },
  })
  const pump = (): void => {
    if (stream.destroyed) return
    if (position >= range.end) {
      stream.push(null)
      return
    }
    const limit = follow === undefined ? range.end : Math.min(range.end, follow.available(position))
    if (limit <= position) {
      try {
        follow?.waitFor(pump)
      } catch (err) {
        stream.destroy(err as Error)
      }
      return
    }
    const piece = Buffer.allocUnsafe(Math.min(READ_PIECE_BYTES, limit - position))
    file.read(piece, position).then(
      (n) => {
        if (n === 0) {
          stream.destroy(new Error(`unexpected end of file at ${position}`))
          return
        }
        position += n
        stream.push(n === piece.byteLength ? piece : piece.subarray(0, n))
      },
      (err: Error) => stream.destroy(err),
    )
  }
  return stream
}
