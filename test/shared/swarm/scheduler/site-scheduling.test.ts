import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { DownloadScheduler, seededRandom, type SiteTurns } from '../../../../shared/swarm/scheduler/index.ts'

const N = 8

function bits(idx: Iterable<number>): Bitfield {
  const b = new Bitfield(N)
  for (const i of idx) b.set(i)
  return b
}

/** A site rule from a table: chunk → when this node may fetch it from outside. */
function turns(at: (index: number) => number): SiteTurns & { asked: number[] } {
  const asked: number[] = []
  return {
    asked,
    outsideAt: (index) => {
      asked.push(index)
      return at(index)
    },
  }
}

function make(site?: SiteTurns): DownloadScheduler {
  return new DownloadScheduler({
    chunkCount: N,
    chunkBytes: () => 1000,
    random: seededRandom(1),
    inflightTotalMs: 0,
    maxInflightPerPeer: 8,
    maxInflightPerFastPeer: 8,
    inOrderWindow: 0,
    ...(site === undefined ? {} : { site }),
  })
}

describe('DownloadScheduler with edge sites', () => {
  it("after a seeder's `busy` for a chunk, asks only seeders for it until the site rule lets relays serve", () => {
    const held = new Map<number, number>()
    const site: SiteTurns = {
      outsideAt: () => 0,
      seederBusy: (i, now) => void held.set(i, held.get(i) ?? now),
      relaysAt: (i, now) => Math.max(now, (held.get(i) ?? now - 5000) + 5000),
    }
    const s = make(site)
    s.addPeer('seeder', 'seeder', Bitfield.full(N))
    s.addPeer('far', 'peer', bits([]))
    expect(s.next(0).find((r) => r.index === 0)?.peer).toBe('seeder')
    for (let i = 1; i < N; i++) s.onChunk('seeder', i, 2, 'ok')
    s.onChunk('seeder', 0, 3, 'busy')
    expect(held.get(0)).toBe(3)
    // A peer of another site has it now. The seeder pauses; far is free, and still is not asked for chunk 0.
    s.peerHas('far', 0)
    expect(s.next(4).some((r) => r.index === 0)).toBe(false)
    // The seeder is asked again once its pause ends, though it failed the chunk.
    let again: string | undefined
    for (let t = 5; t < 5000 && again === undefined; t += 50) again = s.next(t).find((r) => r.index === 0)?.peer
    expect(again).toBe('seeder')
    s.onChunk('seeder', 0, 4000, 'busy')
    // Past the hold, far may serve it.
    let later: string | undefined
    for (let t = 5003; t < 8000 && later === undefined; t += 50) later = s.next(t).find((r) => r.index === 0)?.peer
    expect(later).toBeDefined()
  })

  it('asks a same-site peer for every chunk it holds, though an outside peer holds them too', () => {
    const s = make(turns(() => 0))
    s.addPeer('far', 'peer', Bitfield.full(N))
    s.addPeer('near', 'peer', bits([0, 1, 2]), true)
    const reqs = s.next(0)
    const near = reqs.filter((r) => r.peer === 'near').map((r) => r.index)
    expect(near.sort()).toEqual([0, 1, 2])
    expect(reqs.filter((r) => r.peer === 'far').every((r) => r.index > 2)).toBe(true)
  })

  it('waits for a busy same-site holder instead of going outside', () => {
    const s = make(turns(() => 0))
    s.addPeer('far', 'peer', Bitfield.full(N))
    s.addPeer('near', 'peer', bits([0]), true)
    const first = s.next(0)
    expect(first.find((r) => r.index === 0)?.peer).toBe('near')
    s.onChunk('near', 0, 1, 'busy')
    // Chunk 0 goes back to the pool; near is pausing, far is free, and still chunk 0 is not asked of far.
    expect(s.next(2).some((r) => r.index === 0)).toBe(false)
    expect(s.next(300).find((r) => r.index === 0)?.peer).toBe('near')
  })

  it('leaves a chunk no same-site peer holds to the member whose turn it is, and asks again at the time given', () => {
    const site = turns((i) => (i % 2 === 0 ? 0 : 5000))
    const s = make(site)
    s.addPeer('far', 'peer', Bitfield.full(N))
    const reqs = s.next(0).map((r) => r.index)
    expect(reqs.sort()).toEqual([0, 2, 4, 6])
    // Nothing changed: the scheduler may skip the work until the turn comes, but not beyond.
    expect(s.next(10)).toEqual([])
    for (const i of reqs) s.onChunk('far', i, 20, 'ok')
    expect(s.next(30)).toEqual([])
    expect(
      s
        .next(5000)
        .map((r) => r.index)
        .sort(),
    ).toEqual([1, 3, 5, 7])
  })

  it('takes a chunk from the same-site member that brought it in, not from outside', () => {
    const s = make(turns((i) => (i === 0 ? 0 : 60_000)))
    s.addPeer('far', 'peer', Bitfield.full(N))
    s.addPeer('near', 'peer', bits([]), true)
    expect(s.next(0).map((r) => `${r.peer}/${r.index}`)).toEqual(['far/0'])
    s.peerHas('near', 5)
    expect(s.next(1).map((r) => `${r.peer}/${r.index}`)).toEqual(['near/5'])
  })

  it('asks a same-site holder that failed a chunk again rather than bring a second copy across the WAN', () => {
    const s = make(turns(() => 0))
    s.addPeer('far', 'peer', Bitfield.full(N))
    s.addPeer('near', 'peer', bits([3]), true)
    s.addPeer('near2', 'peer', bits([]), true)
    expect(s.next(0).find((r) => r.index === 3)?.peer).toBe('near')
    s.onChunk('near', 3, 1, 'failed')
    expect(s.next(2).find((r) => r.index === 3)?.peer).toBe('near')
    // Another member that holds it and has not failed it goes first.
    s.onChunk('near', 3, 3, 'failed')
    s.peerHas('near2', 3)
    expect(s.next(4).find((r) => r.index === 3)?.peer).toBe('near2')
  })

  it('without a site rule, behaves as before: the cheapest holder, wherever it is', () => {
    const s = make()
    s.addPeer('far', 'peer', Bitfield.full(N))
    s.addPeer('near', 'peer', bits([]), true)
    expect(s.next(0)).toHaveLength(N)
  })
})
