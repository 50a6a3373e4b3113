import { describe, expect, it } from 'vitest'
import { StallClocks, stalledMs, UNVERIFIED_STALL_FACTOR } from '../../../../shared/swarm/scheduler/index.ts'

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

describe('StallClocks: one node, several downloads', () => {
  const STALL = 60_000

  it('a blob with no byte while another blob of the node gets bytes is waiting, not stalled', () => {
    const node = new StallClocks()
    const waiting = node.start(0)
    const busy = node.start(0)
    for (let t = 1000; t <= 200_000; t += 1000) busy.byte(t)
    expect(waiting.sinceByte(200_000)).toBe(200_000)
    // Only the verified-chunk clock runs for it: 200 s / 4.
    expect(waiting.stalledMs(200_000)).toBe(50_000)
    expect(waiting.stalledMs(200_000)).toBeLessThan(STALL)
  })

  it('that wait is bounded: four stall timeouts without a verified chunk of its own', () => {
    const node = new StallClocks()
    const waiting = node.start(0)
    const busy = node.start(0)
    const end = UNVERIFIED_STALL_FACTOR * STALL + 1000
    for (let t = 1000; t <= end; t += 1000) busy.byte(t)
    expect(waiting.stalledMs(end)).toBeGreaterThan(STALL)
  })

  it('a node that gets no byte at all leaves each download after one stall timeout', () => {
    const node = new StallClocks()
    const a = node.start(0)
    const b = node.start(0)
    a.byte(5000)
    a.verified(5000)
    expect(a.stalledMs(5000 + STALL + 1)).toBeGreaterThan(STALL)
    expect(b.stalledMs(5000 + STALL + 1)).toBeGreaterThan(STALL)
  })

  it('clocks start with their download: a later download is not stalled by the node being quiet before it', () => {
    const node = new StallClocks()
    node.start(0)
    const late = node.start(100_000)
    expect(late.stalledMs(100_000 + STALL - 1)).toBeLessThan(STALL)
  })
})
