import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { TokenBucket } from '../../../shared/rate/index.ts'

describe('TokenBucket (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  const bucket = (bytesPerSecond: number, burstBytes: number) =>
    new TokenBucket({ bytesPerSecond, burstBytes, now: () => Date.now() })

  function track(p: Promise<void>) {
    const s = { done: false, error: undefined as unknown }
    p.then(
      () => (s.done = true),
      (e: unknown) => (s.error = e),
    )
    return s
  }

  it('lets the burst through at once, then paces at the rate', async () => {
    const b = bucket(1000, 100)
    await b.take(100)
    const t = track(b.take(500))
    await vi.advanceTimersByTimeAsync(499)
    expect(t.done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(t.done).toBe(true)
  })

  it('holds the long-run rate over many takes', async () => {
    const b = bucket(10_000, 1000)
    const start = Date.now()
    const done = (async () => {
      for (let passed = 0; passed < 50_000; passed += 1000) await b.take(1000)
      return Date.now() - start
    })()
    await vi.runAllTimersAsync()
    // 1000 bytes of burst, then 49 000 at 10 000 B/s.
    expect(await done).toBe(4900)
  })

  it('lets a take larger than the burst through after its time, and makes the next one wait for it', async () => {
    const b = bucket(1000, 100)
    const big = track(b.take(1100)) // 100 from the burst, 1000 owed: 1 s
    const next = track(b.take(1))
    await vi.advanceTimersByTimeAsync(999)
    expect(big.done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(big.done).toBe(true)
    expect(next.done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(next.done).toBe(true)
  })

  it('serves takers in call order', async () => {
    const b = bucket(1000, 0)
    const order: number[] = []
    const all = [1, 2, 3].map((i) => b.take(100).then(() => order.push(i)))
    await vi.runAllTimersAsync()
    await Promise.all(all)
    expect(order).toEqual([1, 2, 3])
  })

  it('gives an aborted reservation back', async () => {
    const b = bucket(1000, 0)
    const ac = new AbortController()
    const t = track(b.take(1000, { signal: ac.signal }))
    ac.abort()
    await vi.advanceTimersByTimeAsync(0)
    expect(t.error).toMatchObject({ name: 'AbortError' })
    expect(b.available).toBe(0)
    const after = track(b.take(10))
    await vi.advanceTimersByTimeAsync(10)
    expect(after.done).toBe(true)
  })

  it('throws at once on an already-aborted signal, even when unlimited', async () => {
    const signal = AbortSignal.abort()
    await expect(bucket(1000, 10).take(1, { signal })).rejects.toMatchObject({ name: 'AbortError' })
    await expect(bucket(0, 0).take(1, { signal })).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('is unlimited at 0 or Infinity', async () => {
    for (const rate of [0, Number.POSITIVE_INFINITY]) {
      const b = new TokenBucket({ bytesPerSecond: rate })
      expect(b.unlimited).toBe(true)
      await b.take(1e12) // resolves without any timer
    }
  })

  it('rejects nonsense', () => {
    expect(() => new TokenBucket({ bytesPerSecond: -1 })).toThrow(RangeError)
    expect(() => new TokenBucket({ bytesPerSecond: Number.NaN })).toThrow(RangeError)
    expect(() => new TokenBucket({ bytesPerSecond: 1, burstBytes: -1 })).toThrow(RangeError)
  })

  it('defaults the burst to 100 ms of rate, at least 64 KiB', () => {
    expect(new TokenBucket({ bytesPerSecond: 100e6 }).burstBytes).toBe(10e6)
    expect(new TokenBucket({ bytesPerSecond: 1000 }).burstBytes).toBe(64 * 1024)
  })
})
