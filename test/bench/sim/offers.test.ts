import { describe, expect, it } from 'vitest'
import { simulate } from '../../../bench/sim/run.ts'
import type { SimParams } from '../../../bench/sim/world.ts'
import { smallWorld } from './params.ts'

const MIB = 1024 * 1024

function params(over: Partial<SimParams> = {}): SimParams {
  // Two layers of 32 chunks: most of each is fetched before the endgame (8 chunks), where offering peers are asked.
  return smallWorld({ nodes: 8, blobBytes: [32 * MIB, 32 * MIB], manifestBytes: 1000, ...over })
}

describe('simulate: sender offers (--offers)', () => {
  it('all agents offering: every node completes from the swarm, chunks come by offer, few requests are turned away', () => {
    const pull = simulate('shoal-cold', params())
    const push = simulate('shoal-cold', params({ offerShare: 1, offerAhead: 3 }))
    for (const r of [pull, push]) {
      expect(r.nodes.every((n) => n.ok)).toBe(true)
      expect(r.shoal!.fallbacks).toBe(0)
    }
    expect(pull.shoal!.offers).toBeUndefined()
    const offers = push.shoal!.offers!
    // Every chunk a node got from a peer came by offer or by a request (the seeder's are requests).
    const chunks = 8 * 64
    expect(offers.accepted).toBeGreaterThan(chunks / 2)
    expect(offers.accepted + push.shoal!.requests - push.shoal!.busy).toBeGreaterThanOrEqual(chunks)
    expect(push.shoal!.busy).toBeLessThan(pull.shoal!.busy / 4)
    // Nothing came from the origin to a node: the seeder pulled each blob once and the swarm did the rest.
    expect(push.bytesReceived.origin).toBe(0)
  })

  it('half the agents offering: both paths coexist and every node completes', () => {
    const r = simulate('shoal-cold', params({ offerShare: 0.5, offerAhead: 3 }))
    expect(r.nodes.every((n) => n.ok)).toBe(true)
    expect(r.shoal!.fallbacks).toBe(0)
    expect(r.shoal!.offers!.accepted).toBeGreaterThan(0)
    // The agents that do not offer are still asked (and ask): pulls carry part of the rollout.
    expect(r.shoal!.requests - r.shoal!.busy).toBeGreaterThan(64)
  })

  it('no offers unless asked for: the default run makes none', () => {
    const r = simulate('shoal-cold', params({ offerShare: 0 }))
    expect(r.shoal!.offers).toBeUndefined()
  })
})
