import { describe, expect, it } from 'vitest'
import { distribution, percentile } from '../../../bench/fleet/stats.ts'

describe('percentile (nearest rank)', () => {
  it('picks the smallest sample with p% at or below it', () => {
    const v = [5, 1, 4, 2, 3]
    expect(percentile(v, 20)).toBe(1)
    expect(percentile(v, 50)).toBe(3)
    expect(percentile(v, 60)).toBe(3)
    expect(percentile(v, 61)).toBe(4)
    expect(percentile(v, 100)).toBe(5)
  })

  it('makes p99 of 16 nodes the slowest node', () => {
    const v = Array.from({ length: 16 }, (_, i) => i + 1)
    expect(percentile(v, 99)).toBe(16)
    expect(percentile(v, 90)).toBe(15)
    expect(percentile(v, 50)).toBe(8)
  })

  it('does not reorder its input', () => {
    const v = [3, 1, 2]
    percentile(v, 50)
    expect(v).toEqual([3, 1, 2])
  })

  it('rejects no values and p outside (0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(RangeError)
    expect(() => percentile([1], 0)).toThrow(RangeError)
    expect(() => percentile([1], 101)).toThrow(RangeError)
  })
})

describe('distribution', () => {
  it('summarises completion times', () => {
    expect(distribution([2, 4, 6, 8])).toEqual({ count: 4, min: 2, p50: 4, p90: 8, p99: 8, max: 8, mean: 5 })
  })

  it('rejects an empty list', () => {
    expect(() => distribution([])).toThrow(RangeError)
  })
})
