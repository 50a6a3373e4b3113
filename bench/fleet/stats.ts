/**
 * Nearest-rank percentile: the smallest sample with at least `p`% of the samples at or below it. With
 * 16 nodes p99 is the slowest node, which is what "99% of the fleet is done" means for a fleet that small.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of no values')
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile: p must be in (0, 100], got ${p}`)
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.max(0, rank - 1)]!
}

export interface Distribution {
  readonly count: number
  readonly min: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) throw new RangeError('distribution of no values')
  let sum = 0
  for (const v of values) sum += v
  return {
    count: values.length,
    min: Math.min(...values),
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: Math.max(...values),
    mean: sum / values.length,
  }
}
