import { describe, expect, it } from 'vitest'
import { backoffDelayMs, parseRetryAfterMs } from '../../../shared/origin/retry.ts'

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  it.each([
    ['120', 120_000],
    [' 0 ', 0],
    ['Thu, 01 Jan 2026 00:00:30 GMT', 30_000],
    ['Wed, 31 Dec 2025 23:00:00 GMT', 0],
    ['Thursday, 01-Jan-26 00:00:05 GMT', 5_000],
    ['1.5', undefined],
    ['-3', undefined],
    ['soon', undefined],
    ['2026-01-01', undefined],
    [undefined, undefined],
  ])('%j → %j', (value, ms) => {
    expect(parseRetryAfterMs(value, now)).toBe(ms)
  })
})

describe('backoffDelayMs', () => {
  const policy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1000 }
  it('doubles, stays within [ceiling/2, ceiling] and caps at maxDelayMs', () => {
    for (const [retry, ceiling] of [
      [0, 100],
      [1, 200],
      [2, 400],
      [3, 800],
      [4, 1000],
      [9, 1000],
    ] as const) {
      expect(backoffDelayMs(retry, policy, () => 0)).toBe(ceiling / 2)
      expect(backoffDelayMs(retry, policy, () => 1)).toBe(ceiling)
      const d = backoffDelayMs(retry, policy)
      expect(d).toBeGreaterThanOrEqual(ceiling / 2)
      expect(d).toBeLessThanOrEqual(ceiling)
    }
  })
})
