import { describe, expect, it } from 'vitest'
import { stalledMs, UNVERIFIED_STALL_FACTOR } from '../../../../shared/swarm/scheduler/index.ts'

describe('stalledMs', () => {
  const STALL = 60_000

  it('a swarm that sends nothing is stalled after one stall timeout', () => {
    expect(stalledMs(60_000, 0, 0)).toBe(60_000)
    expect(stalledMs(60_001, 0, 0)).toBeGreaterThan(STALL)
  })

  it('bytes arriving keep a download alive while no chunk completes, up to four stall timeouts', () => {
    // Bytes a moment ago, last verified chunk 200 s ago: not stalled.
    expect(stalledMs(200_000, 199_000, 0)).toBe(50_000)
    expect(stalledMs(200_000, 199_000, 0)).toBeLessThan(STALL)
    // Trickling for longer than 4 × the stall timeout without a verified chunk: stalled.
    expect(stalledMs(UNVERIFIED_STALL_FACTOR * STALL + 1, UNVERIFIED_STALL_FACTOR * STALL, 0)).toBeGreaterThan(STALL)
  })

  it('goes quiet after a verified chunk: counts from the last byte', () => {
    expect(stalledMs(100_000, 30_000, 30_000)).toBe(70_000)
  })
})
