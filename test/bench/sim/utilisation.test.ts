import { describe, expect, it } from 'vitest'
import { simulate } from '../../../bench/sim/run.ts'
import { utilisation } from '../../../bench/sim/utilisation.ts'
import type { SimParams } from '../../../bench/sim/world.ts'

const MIB = 1024 * 1024

const P: SimParams = {
  nodes: 4,
  links: { originUp: 40, cacheUp: 100, cacheDown: 100, seederUp: 160, seederDown: 160, nodeUp: 40, nodeDown: 40 },
  blobBytes: [600, 4 * MIB, 4 * MIB],
  manifestBytes: 800,
  chunkBytes: 1 * MIB,
  rttMs: 2,
  wireEfficiency: 1,
  uploadSlots: 3,
  seederUploadSlots: 8,
  slotWaitMs: 300,
  sendBufferBytes: 0,
  lookupPeriodMs: 1000,
  lookupLatencyMs: 10,
  lookupResults: 20,
  dhtReplication: 20,
  provideLatencyMs: 10,
  maxPeers: 40,
  hints: 16,
  stallTimeoutMs: 60_000,
  chunkDeadlineMs: 30_000,
  originControlBytesPerNode: 0,
  seed: 3,
  limitMs: 600_000,
}

describe('utilisation', () => {
  it('samples the same rollout simulate runs, and its link use accounts for the bytes each node received', () => {
    const u = utilisation(P, false, 10)
    const r = simulate('shoal-cold', P)
    // Sampling only reads the model: every node finishes when it does in a plain run.
    expect(u.doneAt).toEqual(r.nodes.map((n) => n.seconds))
    // Each node received about S over its time at its downlink's rate × the share sampled busy (10 ms samples).
    const S = P.blobBytes.reduce((a, b) => a + b, 0)
    const capBytesPerS = (P.links.nodeDown * 1e6) / 8
    const mean = u.doneAt.reduce((a, b) => a + b, 0) / u.doneAt.length
    expect(u.downBusy).toBeGreaterThan(0.8 * (S / capBytesPerS / mean))
    expect(u.downBusy).toBeLessThan(1.2 * (S / capBytesPerS / mean))
    expect(u.upBusy).toBeGreaterThan(0)
    expect(u.seederUpBusy).toBeGreaterThan(0)
    // Every sample of a node not done falls in one bucket of each histogram.
    const inbound = u.inbound.reduce((a, b) => a + b, 0)
    expect(u.slotsTaken.reduce((a, b) => a + b, 0)).toBe(inbound)
    expect(inbound).toBeGreaterThan(0)
  })
})
