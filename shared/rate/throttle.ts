import { PassThrough, pipeline, type Readable, Transform } from 'node:stream'
import { THROTTLE_SLICE_BYTES } from './constants.ts'
import type { TokenBucket } from './token-bucket.ts'

/** A Transform that lets bytes through at the bucket's rate; destroying it drops its pending wait. */
export function throttle(bucket: TokenBucket, opts: { sliceBytes?: number } = {}): Transform {
  if (bucket.unlimited) return new PassThrough()
  const slice = Math.max(1, opts.sliceBytes ?? THROTTLE_SLICE_BYTES)
  const abort = new AbortController()
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const pass = async () => {
        for (let off = 0; off < chunk.byteLength; off += slice) {
          const part = chunk.subarray(off, off + slice)
          await bucket.take(part.byteLength, { signal: abort.signal })
          this.push(part)
        }
      }
      pass().then(() => cb(), cb)
    },
    destroy(err, cb) {
      abort.abort()
      cb(err)
    },
  })
}

/**
 * `source` throttled, with errors and destruction propagated both ways (unlike `pipe`);
 * the source itself when the bucket is unlimited.
 */
export function throttled(source: Readable, bucket: TokenBucket): Readable {
  if (bucket.unlimited) return source
  const t = throttle(bucket)
  pipeline(source, t, () => {})
  return t
}
