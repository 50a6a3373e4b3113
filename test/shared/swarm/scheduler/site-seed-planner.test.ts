import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { SeedPlanner, SendMeter, SiteSeedPlanner } from '../../../../shared/swarm/scheduler/index.ts'

const N = 32

function held(count: number): Bitfield {
  const b = new Bitfield(N)
  for (let i = 0; i < count; i++) b.set(i)
  return b
}

describe('SiteSeedPlanner', () => {
  it('plans agents that name no site exactly as one SeedPlanner does', () => {
    const one = new SeedPlanner({ chunkCount: N, have: held(20) })
    const sited = new SiteSeedPlanner({ chunkCount: N, have: held(20) })
    for (const [t, peer] of ['a', 'b', 'c', 'a', 'b'].entries()) {
      expect([...sited.advertiseFor(peer, t).indexes()]).toEqual([...one.advertiseFor(peer, t).indexes()])
    }
    sited.onServed('a', 0, 10)
    one.onServed('a', 0, 10)
    expect([...sited.advertiseFor('b', 11).indexes()]).toEqual([...one.advertiseFor('b', 11).indexes()])
    expect(sited.served).toBe(1)
  })

  it('tells an agent with a site everything held: its site splits the chunks by the election', () => {
    const p = new SiteSeedPlanner({ chunkCount: N, have: held(20) })
    expect(p.advertiseFor('a', 0, 'store-1').count).toBe(20)
    expect(p.advertiseFor('b', 0, 'store-1').count).toBe(20)
    p.markHave(25)
    expect(p.advertiseFor('a', 1, 'store-1').has(25)).toBe(true)
    // The same seeder still super-seeds agents without a site.
    expect(p.advertiseFor('c', 1).count).toBeLessThan(20)
  })

  it('leaves the seeder meter to the agents in no site: members lacking chunks are not fresh work waiting', () => {
    const meter = new SendMeter(8)
    const p = new SiteSeedPlanner({ chunkCount: N, have: new Bitfield(N), meter, copies: 2 })
    p.markHave(0)
    expect(p.advertiseFor('a', 0, 'store-1').count).toBe(1)
    expect(meter.freshWaiting).toBe(0)
    expect(p.advertiseFor('b', 0).count).toBe(1)
    expect(meter.freshWaiting).toBe(1)
  })
})
