/**
 * Length-prefixed frames (unsigned varint length, then the bytes) over a libp2p message stream.
 *
 * Built on @libp2p/utils' byteStream rather than its lpStream because the limit differs per frame: a control
 * frame may hold 64 KiB, the data frame after it exactly the length its header announced. The limit is checked
 * on the length prefix, before a byte of the body is buffered.
 */
import type { Stream } from '@libp2p/interface'
import { type ByteStream, byteStream } from '@libp2p/utils'
import type { TokenBucket } from '../../rate/token-bucket.ts'
import { DATA_SLICE_BYTES, UNTHROTTLED_DATA_SLICE_BYTES } from '../wire/constants.ts'
import { InvalidMessageError } from '../wire/errors.ts'
import { MAX_LENGTH_PREFIX_BYTES, PROGRESS_SLICE_BYTES } from './constants.ts'

export function encodeVarint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot encode length ${value}`)
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

export class FrameStream {
  readonly stream: Stream
  readonly #bytes: ByteStream<Stream>

  /**
   * `maxBufferBytes` bounds what is held unread: the largest frame(s) this side expects plus their prefixes.
   * A peer that sends more gets its stream aborted by byteStream (StreamBufferError).
   */
  constructor(stream: Stream, opts: { maxBufferBytes: number }) {
    this.stream = stream
    this.#bytes = byteStream(stream, { maxBufferSize: opts.maxBufferBytes })
  }

  /** Reads one frame of at most `maxBytes`; InvalidMessageError before buffering anything larger. */
  async read(maxBytes: number, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return await this.readBody(await this.readLength(maxBytes, opts), opts)
  }

  /** Reads the `length` bytes of a frame whose prefix readLength returned. */
  async readBody(
    length: number,
    opts: { signal?: AbortSignal; onProgress?: (received: number) => void } = {},
  ): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0)
    const { onProgress, signal } = opts
    if (onProgress === undefined) return (await this.#bytes.read({ bytes: length, signal })).subarray()
    // In slices, so a slow transfer shows it is alive long before its last byte.
    // Not zero-filled: it is returned only once every byte of it was read.
    const out = Buffer.allocUnsafe(length)
    let at = 0
    while (at < length) {
      const list = await this.#bytes.read({ bytes: Math.min(PROGRESS_SLICE_BYTES, length - at), signal })
      for (const part of list) {
        out.set(part, at)
        at += part.byteLength
      }
      onProgress(at)
    }
    return out
  }

  /** Reads a frame's length prefix (minimal varint), rejecting one above `maxBytes`. */
  async readLength(maxBytes: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    let length = 0
    for (let i = 0; ; i++) {
      if (i === MAX_LENGTH_PREFIX_BYTES) throw new InvalidMessageError('frame length prefix too long')
      const byte = (await this.#bytes.read({ bytes: 1, signal: opts.signal })).get(0)
      if (byte === 0 && i > 0) throw new InvalidMessageError('frame length prefix is not minimal')
      length += (byte & 0x7f) * 2 ** (7 * i)
      if (length > maxBytes) throw new InvalidMessageError(`frame of ${length} or more bytes, limit ${maxBytes}`)
      if ((byte & 0x80) === 0) return length
    }
  }

  /** Writes whole frames in one send (a control frame and, optionally, the prefix of the data frame after it). */
  async write(frames: readonly Uint8Array[], opts: { signal?: AbortSignal } = {}): Promise<void> {
    const parts: Uint8Array[] = []
    for (const f of frames) parts.push(encodeVarint(f.byteLength), f)
    await this.#bytes.write(Buffer.concat(parts), opts)
  }

  /**
   * Writes one data frame: the prefix, then the bytes in slices, each taking its bytes from `bucket` first so a
   * throttled upload flows at the bucket's rate and stops as soon as `signal` aborts.
   */
  async writeData(bytes: Uint8Array, opts: { signal?: AbortSignal; bucket?: TokenBucket } = {}): Promise<void> {
    const { bucket, signal } = opts
    const throttled = bucket !== undefined && !bucket.unlimited
    const slice = throttled ? DATA_SLICE_BYTES : UNTHROTTLED_DATA_SLICE_BYTES
    await this.#bytes.write(encodeVarint(bytes.byteLength), { signal })
    for (let offset = 0; offset < bytes.byteLength; offset += slice) {
      const piece = bytes.subarray(offset, Math.min(offset + slice, bytes.byteLength))
      if (throttled) await bucket.take(piece.byteLength, { signal })
      signal?.throwIfAborted()
      await this.#bytes.write(piece, { signal })
    }
  }
}
