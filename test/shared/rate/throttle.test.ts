import { PassThrough, Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { TokenBucket, throttle, throttled } from '../../../shared/rate/index.ts'

function sink() {
  let bytes = 0
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.byteLength
        cb()
      },
    }),
    bytes: () => bytes,
  }
}

describe('throttle (real time)', () => {
  it('passes bytes at about the bucket rate', async () => {
    const rate = 2 * 1024 * 1024
    const bucket = new TokenBucket({ bytesPerSecond: rate, burstBytes: 64 * 1024 })
    const total = 512 * 1024
    const out = sink()
    const start = performance.now()
    await pipeline(Readable.from([Buffer.alloc(total / 2), Buffer.alloc(total / 2)]), throttle(bucket), out.stream)
    const ms = performance.now() - start
    expect(out.bytes()).toBe(total)
    // (512 - 64) KiB at 2 MiB/s = 219 ms; timers only ever fire late, so the upper bound is loose.
    expect(ms).toBeGreaterThanOrEqual(200)
    expect(ms).toBeLessThan(800)
  })

  it('shares one bucket between streams', async () => {
    const rate = 2 * 1024 * 1024
    const bucket = new TokenBucket({ bytesPerSecond: rate, burstBytes: 16 * 1024 })
    const start = performance.now()
    await Promise.all(
      [0, 1].map(() => pipeline(Readable.from([Buffer.alloc(256 * 1024)]), throttle(bucket), sink().stream)),
    )
    // 512 KiB in all, minus the burst, at 2 MiB/s: ≈ 242 ms.
    expect(performance.now() - start).toBeGreaterThanOrEqual(220)
  })

  it('drops its pending wait when destroyed', async () => {
    const bucket = new TokenBucket({ bytesPerSecond: 1000, burstBytes: 0 })
    const t = throttle(bucket)
    t.write(Buffer.alloc(10_000)) // would take 10 s
    const closed = new Promise((r) => t.once('close', r))
    t.destroy()
    await closed
    // The reservation came back: a small take now waits only for itself.
    const start = performance.now()
    await bucket.take(10)
    expect(performance.now() - start).toBeLessThan(1000)
  })

  it('is a plain pass-through when unlimited', async () => {
    const t = throttle(new TokenBucket({ bytesPerSecond: 0 }))
    expect(t).toBeInstanceOf(PassThrough)
    const src = Readable.from([Buffer.alloc(8)])
    expect(throttled(src, new TokenBucket({ bytesPerSecond: 0 }))).toBe(src)
  })

  it('throttled() propagates a source error', async () => {
    const src = new Readable({ read() {} })
    const out = throttled(src, new TokenBucket({ bytesPerSecond: 1e6 }))
    const failed = new Promise((_, reject) => out.once('error', reject))
    src.destroy(new Error('origin reset'))
    await expect(failed).rejects.toThrow('origin reset')
  })
})
