import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { SeedPlanner, SendMeter } from '../../../../shared/swarm/scheduler/index.ts'

function newlyAdvertised(planner: SeedPlanner, peer: string, told: Map<string, Bitfield>, now: number): number[] {
  const seen = told.get(peer) ?? new Bitfield(planner.chunkCount)
  told.set(peer, seen)
  return [...planner.advertiseFor(peer, now).indexes()].filter((i) => seen.set(i))
}

describe('SeedPlanner', () => {
  it('hands distinct chunks to distinct agents before sending any chunk twice', () => {
    const n = 16
    const planner = new SeedPlanner({ chunkCount: n })
    const agents = ['a', 'b', 'c', 'd']
    const told = new Map<string, Bitfield>()
    const sends = new Array<number>(n).fill(0)
    const advertisedTo = new Array<number>(n).fill(0)
    let lastRound: [string, number][] = []
    for (let now = 0; planner.phase === 'seeding'; now++) {
      expect(now).toBeLessThan(100)
      // What the seeder sent last round reaches one more agent through the swarm.
      for (const [from, c] of lastRound) planner.onPeerHas(agents[(agents.indexOf(from) + 1) % agents.length]!, c)
      lastRound = []
      for (const a of agents) {
        for (const i of newlyAdvertised(planner, a, told, now)) advertisedTo[i]!++
        // Each agent asks for one advertised chunk that no agent has yet, as its scheduler would.
        const want = [...told.get(a)!.indexes()].find((i) => sends[i] === 0)
        if (want === undefined) continue
        sends[want]!++
        planner.onServed(a, want, now)
        lastRound.push([a, want])
      }
    }
    expect(sends.every((s) => s === 1)).toBe(true)
    expect(advertisedTo.every((k) => k === 1)).toBe(true)
    expect(planner.served).toBe(n)
    // Serving phase: everything is advertised.
    expect(planner.advertiseFor('a', 100).complete).toBe(true)
  })

  it('gives an agent a new chunk only once its last one was seen at another agent', () => {
    const planner = new SeedPlanner({ chunkCount: 8, reservePerPeer: 1, reserveMs: 1000 })
    planner.addPeer('a')
    planner.addPeer('b')
    expect([...planner.advertiseFor('a', 0).indexes()]).toEqual([0])
    planner.onServed('a', 0, 10)
    expect([...planner.advertiseFor('a', 20).indexes()]).toEqual([0]) // chunk 0 is only at a
    planner.onPeerHas('b', 0)
    expect([...planner.advertiseFor('a', 30).indexes()]).toEqual([0, 1])
    // A slow sharer is not blocked forever: after reserveMs its sent chunk stops counting.
    planner.onServed('a', 1, 40)
    expect([...planner.advertiseFor('a', 1039).indexes()]).toEqual([0, 1])
    expect([...planner.advertiseFor('a', 1040).indexes()]).toEqual([0, 1, 2])
  })

  it('spreads its reservations over the hungry agents', () => {
    const planner = new SeedPlanner({ chunkCount: 64, reservePerPeer: 4, reserveTotal: 8 })
    expect(planner.advertiseFor('solo', 0).count).toBe(4)
    const p2 = new SeedPlanner({ chunkCount: 64, reservePerPeer: 4, reserveTotal: 8 })
    for (const a of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) p2.addPeer(a)
    const sets = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((a) => [...p2.advertiseFor(a, 0).indexes()])
    expect(sets.map((s) => s.length)).toEqual([1, 1, 1, 1, 1, 1, 1, 1])
    expect(new Set(sets.flat()).size).toBe(8)
  })

  it('refills an agent once its chunk is held, and only then', () => {
    const planner = new SeedPlanner({ chunkCount: 8, reservePerPeer: 1 })
    expect([...planner.advertiseFor('a', 0).indexes()]).toEqual([0])
    expect([...planner.advertiseFor('a', 1).indexes()]).toEqual([0])
    expect([...planner.advertiseFor('b', 1).indexes()]).toEqual([1])
    // a got chunk 0 from somewhere else (a peer): its reservation is spent, it gets the next unsent chunk.
    planner.onPeerHas('a', 0)
    expect([...planner.advertiseFor('a', 2).indexes()]).toEqual([0, 2])
    // An agent that already holds chunks (a resumed download) is not offered those, nor chunks others hold.
    const resumed = new Bitfield(8)
    for (const i of [2, 3, 4]) resumed.set(i)
    planner.addPeer('c', resumed)
    expect([...planner.advertiseFor('c', 2).indexes()]).toEqual([5])
  })

  it('releases a reservation that was not taken up in time, or whose agent left', () => {
    const planner = new SeedPlanner({ chunkCount: 4, reservePerPeer: 1, reserveMs: 100 })
    expect([...planner.advertiseFor('a', 0).indexes()]).toEqual([0])
    expect([...planner.advertiseFor('b', 50).indexes()]).toEqual([1])
    expect([...planner.advertiseFor('c', 100).indexes()]).toEqual([0])
    planner.removePeer('b')
    expect([...planner.advertiseFor('d', 100).indexes()]).toEqual([1])
  })

  it('goes back to seeding when the only holder of a chunk leaves', () => {
    const planner = new SeedPlanner({ chunkCount: 2 })
    planner.onServed('a', 0, 0)
    planner.onServed('b', 1, 0)
    expect(planner.phase).toBe('serving')
    planner.removePeer('b')
    expect(planner.phase).toBe('seeding')
    expect([...planner.advertiseFor('c', 0).indexes()]).toEqual([1])
  })

  it('pipelines a cold blob: advertises each chunk as it arrives from the origin', () => {
    const planner = new SeedPlanner({ chunkCount: 4, have: new Bitfield(4) })
    planner.addPeer('a')
    planner.addPeer('b')
    expect(planner.advertiseFor('a', 0).count).toBe(0)
    planner.markHave(0)
    expect([...planner.advertiseFor('a', 0).indexes()]).toEqual([0])
    expect(planner.advertiseFor('b', 0).count).toBe(0)
    planner.markHave(1)
    expect([...planner.advertiseFor('b', 0).indexes()]).toEqual([1])
    expect(planner.phase).toBe('seeding')
  })
})

describe('SeedPlanner with a lone agent', () => {
  it('does not hold sent chunks back when no other agent could spread them', () => {
    const p = new SeedPlanner({ chunkCount: 4, reservePerPeer: 1 })
    expect([...p.advertiseFor('a', 0).indexes()]).toEqual([0])
    p.onServed('a', 0, 10)
    expect([...p.advertiseFor('a', 20).indexes()]).toEqual([0, 1])
  })
})

describe('SeedPlanner copies from spare uplink (SendMeter)', () => {
  /** A meter that has seen one fast upload and has all its slots free. */
  function idleMeter(): SendMeter {
    const m = new SendMeter(8)
    m.begin(0)
    m.end(0, 1 << 20, 100)
    return m
  }

  it('tells a second agent of a chunk on its way to the first while the meter has room', () => {
    const meter = idleMeter()
    const p = new SeedPlanner({ chunkCount: 4, have: new Bitfield(4), reservePerPeer: 1, meter, copies: 2 })
    p.addPeer('a')
    p.addPeer('b')
    p.markHave(0)
    expect([...p.advertiseFor('a', 0).indexes()]).toEqual([0])
    // Chunk 0 is a's; nothing else is held: b is told of 0 as a copy only once a's send has begun.
    expect(meter.freshWaiting).toBe(1)
    expect(p.advertiseFor('b', 0).count).toBe(0)
    p.begin('a', 0, 10)
    expect(meter.freshWaiting).toBe(0)
    expect([...p.advertiseFor('b', 10).indexes()]).toEqual([0])
    // Two copies at most: c is not told of it.
    p.addPeer('c')
    expect(p.advertiseFor('c', 10).count).toBe(0)
  })

  it('hands out no copy while a fresh chunk waits, nor without a meter or with copies 1', () => {
    const meter = idleMeter()
    const p = new SeedPlanner({ chunkCount: 4, have: new Bitfield(4), reservePerPeer: 1, meter, copies: 2 })
    p.addPeer('a')
    p.addPeer('b')
    p.addPeer('c')
    p.markHave(0)
    p.markHave(1)
    expect([...p.advertiseFor('a', 0).indexes()]).toEqual([0])
    p.begin('a', 0, 0)
    // Chunk 1 waits for its first send: b is promised it, and nobody gets a copy of 0.
    expect([...p.advertiseFor('b', 0).indexes()]).toEqual([1])
    expect(p.advertiseFor('c', 0).count).toBe(0)

    for (const opts of [{}, { meter: idleMeter(), copies: 1 }]) {
      const q = new SeedPlanner({ chunkCount: 4, have: new Bitfield(4), reservePerPeer: 1, ...opts })
      q.addPeer('a')
      q.addPeer('b')
      q.markHave(0)
      expect([...q.advertiseFor('a', 0).indexes()]).toEqual([0])
      q.begin('a', 0, 0)
      expect(q.advertiseFor('b', 0).count).toBe(0)
    }
  })
})
