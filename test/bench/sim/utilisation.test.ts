import { describe, expect, it } from 'vitest'
import { simulate } from '../../../bench/sim/run.ts'
import { utilisation } from '../../../bench/sim/utilisation.ts'
import type { SimParams } from '../../../bench/sim/world.ts'
import { smallWorld } from './params.ts'

const P: SimParams = smallWorld()

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
