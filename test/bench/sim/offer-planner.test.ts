import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../shared/chunks/bitfield.ts'
import { OFFER_FULL_BACKOFF_MS, OfferPlanner } from '../../../bench/sim/offer-planner.ts'
import { seededRandom } from '../../../shared/swarm/scheduler/index.ts'

function bits(n: number, idx: Iterable<number>): Bitfield {
  const b = new Bitfield(n)
  for (const i of idx) b.set(i)
  return b
}

function planner(chunkCounts: number[] = [8]): OfferPlanner {
  return new OfferPlanner({ chunkCounts, random: seededRandom(7) })
}

describe('OfferPlanner', () => {
  it('offers nothing until it holds a chunk some receiver lacks', () => {
    const p = planner()
    p.peerHave(0, 'a', bits(8, [0, 1]))
    expect(p.pick(0)).toBeUndefined()
    p.hold(0, 1)
    expect(p.pick(0)).toBeUndefined()
    p.hold(0, 2)
    expect(p.pick(0)).toEqual({ blob: 0, peer: 'a', index: 2 })
  })

  it('offers the rarest chunk in its view, to a receiver that lacks it', () => {
    const p = planner()
    for (const i of [0, 1, 2]) p.hold(0, i)
    // Chunk 0 is held by two receivers, 1 by one, 2 by none: 2 goes first, to whoever lacks it.
    p.peerHave(0, 'a', bits(8, [0, 1]))
    p.peerHave(0, 'b', bits(8, [0]))
    const first = p.pick(0)!
    expect(first.index).toBe(2)
    // The other receiver gets the next rarest it lacks: 2 again if it was not the first, else 1.
    const second = p.pick(0)!
    expect(second.peer).not.toBe(first.peer)
    expect(second.index).toBe(first.peer === 'b' ? 2 : 1)
  })

  it('keeps one offer in flight per receiver, over all blobs, until it ends', () => {
    const p = planner([4, 4])
    p.hold(0, 0)
    p.hold(1, 0)
    p.peerHave(0, 'a', bits(4, []))
    p.peerHave(1, 'a', bits(4, []))
    const o = p.pick(0)!
    expect(p.pick(0)).toBeUndefined()
    p.ended(o, true)
    const next = p.pick(1)!
    expect(next.blob).not.toBe(o.blob)
    p.ended(next, true)
    // Both chunks are now held there: nothing left to offer.
    expect(p.pick(2)).toBeUndefined()
  })

  it('leaves a receiver that was full alone for a while, and says when to look again', () => {
    const p = planner()
    p.hold(0, 3)
    p.peerHave(0, 'a', bits(8, []))
    const o = p.pick(100)!
    expect(p.answered(o, { answer: 'full', index: 3 }, 100)).toBeUndefined()
    expect(p.pick(101)).toBeUndefined()
    expect(p.retryAt).toBe(100 + OFFER_FULL_BACKOFF_MS)
    expect(p.pick(100 + OFFER_FULL_BACKOFF_MS)).toEqual(o)
  })

  it('counts a chunk the receiver has as held there, and one coming as worth offering again later', () => {
    const p = planner()
    p.hold(0, 1)
    p.hold(0, 2)
    p.peerHave(0, 'a', bits(8, []))
    const o1 = p.pick(0)!
    p.answered(o1, { answer: 'have', index: o1.index }, 0)
    // It took nothing else this node holds: left alone until this node holds more, or a while has passed.
    expect(p.pick(1)).toBeUndefined()
    p.hold(0, 3)
    const o2 = p.pick(2)!
    expect(o2.index).not.toBe(o1.index)
    p.answered(o2, { answer: 'coming', index: o2.index }, 2)
    const o3 = p.pick(3)
    expect(o3).toBeUndefined()
    // After the recheck time the chunk said to be coming may be offered again; the one it had, never.
    const later: number[] = []
    for (let t = 5_000; t < 5_003; t++) {
      const o = p.pick(t)
      if (o === undefined) break
      later.push(o.index)
      p.ended(o, true)
    }
    expect(later.sort()).toEqual([1, 2, 3].filter((i) => i !== o1.index).sort())
  })

  it('follows a receiver that took another chunk than the one offered', () => {
    const p = planner()
    p.hold(0, 1)
    p.hold(0, 2)
    p.peerHave(0, 'a', bits(8, []))
    const o = p.pick(0)!
    const other = o.index === 1 ? 2 : 1
    const taken = p.answered(o, { answer: 'accept', index: other }, 0)!
    expect(taken).toEqual({ blob: 0, peer: 'a', index: other })
    // Still one in flight to it; once sent, only the chunk it said it had or has coming is left, and not yet.
    expect(p.pick(0)).toBeUndefined()
    p.ended(taken, true)
    expect(p.pick(10)).toBeUndefined()
    const again = p.pick(5_000)
    expect(again).toEqual(o)
    p.ended(again!, true)
    // A chunk this node does not hold is never taken as the offer's chunk.
    p.hold(0, 5)
    const o3 = p.pick(6_000)
    expect(o3).toBeDefined()
    expect(p.answered(o3!, { answer: 'accept', index: 6 }, 6_000)).toBeUndefined()
    expect(p.counts).toMatchObject({ offered: 3, accepted: 1, swapped: 1 })
  })

  it('takes turns between receivers lacking equally rare chunks', () => {
    const p = planner()
    for (let i = 0; i < 8; i++) p.hold(0, i)
    for (const id of ['a', 'b', 'c']) p.peerHave(0, id, bits(8, []))
    const seen: string[] = []
    for (let t = 0; t < 6; t++) {
      const o = p.pick(t)!
      seen.push(o.peer)
      p.ended(o, true)
    }
    expect(seen.slice(0, 3).sort()).toEqual(['a', 'b', 'c'])
    expect(seen.slice(3).sort()).toEqual(['a', 'b', 'c'])
  })

  it('forgets a receiver', () => {
    const p = planner()
    p.hold(0, 0)
    p.peerHave(0, 'a', bits(8, []))
    p.forget(0, 'a')
    expect(p.pick(0)).toBeUndefined()
    p.peerHas(0, 'a', 1)
    expect(p.pick(0)).toBeUndefined()
  })
})
