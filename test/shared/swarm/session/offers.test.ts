import { describe, expect, it } from 'vitest'
import { ReceiveBudget } from '../../../../shared/swarm/scheduler/index.ts'
import type { ChunkAnswer, ChunkCall } from '../../../../shared/swarm/session/index.ts'
import { all, content, world } from './fakes.ts'

/** A sender's side of an offer the session took: it records the call and answers when told. */
function sender(): { calls: ChunkCall[]; fetch: (call: ChunkCall) => { abort(): void }; aborted: number[] } {
  const calls: ChunkCall[] = []
  const aborted: number[] = []
  return {
    calls,
    aborted,
    fetch: (call) => {
      calls.push(call)
      return { abort: () => aborted.push(call.index) }
    },
  }
}

describe('DownloadSession: offers', () => {
  it('writes an offered chunk only once it is proven against the map, and bans a sender whose chunk fails it', () => {
    const n = 4
    const w = world({ chunkCount: n, peers: [] })
    const s = sender()
    expect(w.session.offered('o', 1, s.fetch)).toEqual({ answer: 'accept', index: 1 })
    expect(s.calls.map((c) => c.index)).toEqual([1])
    s.calls[0]!.settle({ kind: 'chunk', bytes: content(1) } satisfies ChunkAnswer)
    w.clock.run(10)
    expect(w.written.get(1)).toEqual(content(1))
    expect(w.session.counts.offers).toBe(1)
    expect(w.session.counts.requests).toBe(0)
    // Held now: the same chunk offered again is declined; another is taken.
    expect(w.session.offered('o', 1, s.fetch).answer).toBe('have')
    expect(w.session.offered('o', 2, s.fetch)).toEqual({ answer: 'accept', index: 2 })
    s.calls[1]!.settle({ kind: 'chunk', bytes: content(2).map((x) => x ^ 0xff) })
    w.clock.run(20)
    expect(w.written.has(2)).toBe(false)
    expect(w.rejected).toEqual([{ peer: 'o', index: 2, reason: 'hash' }])
    expect(w.bans.has('o')).toBe(true)
  })

  it('declines within the node budget, and stops asking a peer that offers', () => {
    const n = 24
    const budget = new ReceiveBudget(1)
    const w = world({
      chunkCount: n,
      peers: [{ id: 'o', kind: 'peer', have: all(n), behaviour: { kind: 'honest' } }],
      init: { budget },
    })
    // The peer is added at 1 ms and asked for one chunk at once (the budget is one); told it offers, it is asked for
    // nothing more, though it holds every chunk.
    w.clock.run(1)
    expect(w.fetches.length).toBe(1)
    w.session.offersFrom('o')
    w.clock.run(2_000)
    expect(w.written.size).toBe(1)
    expect(w.fetches.length).toBe(1)
    const s = sender()
    expect(w.session.offered('o', 5, s.fetch)).toEqual({ answer: 'accept', index: 5 })
    // The budget of one is taken by that offer.
    expect(w.session.offered('o', 6, s.fetch).answer).toBe('full')
    s.calls[0]!.settle({ kind: 'chunk', bytes: content(5) })
    w.clock.run(2_010)
    expect(budget.used).toBe(0)
    expect(w.session.offered('o', 6, s.fetch).answer).toBe('accept')
  })
})
