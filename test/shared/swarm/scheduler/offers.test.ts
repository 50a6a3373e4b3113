import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { DownloadScheduler, type SchedulerOptions, seededRandom } from '../../../../shared/swarm/scheduler/index.ts'

const CHUNK = 1000

function bits(n: number, idx: Iterable<number>): Bitfield {
  const b = new Bitfield(n)
  for (const i of idx) b.set(i)
  return b
}

function make(n: number, opts: Partial<SchedulerOptions> = {}): DownloadScheduler {
  return new DownloadScheduler({
    chunkCount: n,
    chunkBytes: () => CHUNK,
    random: seededRandom(1),
    inflightTotalMs: 0,
    maxInflightPerFastPeer: 4,
    endgameRemaining: 2,
    ...opts,
  })
}

describe('DownloadScheduler: offers', () => {
  it('asks a peer that offers for nothing before the endgame, and asks it in the endgame', () => {
    const s = make(16)
    s.addPeer(
      'p',
      'peer',
      bits(
        16,
        Array.from({ length: 16 }, (_, i) => i),
      ),
    )
    s.setOffers('p')
    expect(s.next(0)).toEqual([])
    for (let i = 0; i < 14; i++) s.markHave(i, 1)
    // Two missing = the endgame: the last chunks are asked for.
    expect(
      s
        .next(2)
        .map((r) => r.index)
        .sort(),
    ).toEqual([14, 15])
  })

  it('still asks a peer that does not offer, and the seeder only for what no peer holds', () => {
    const s = make(16)
    s.addPeer('p', 'peer', bits(16, [0, 1]))
    s.addPeer('o', 'peer', bits(16, [2, 3]))
    s.addPeer('seeder', 'seeder', bits(16, [0, 1, 2, 3, 4]))
    s.setOffers('o')
    const asked = s.next(0)
    expect(asked.filter((r) => r.peer === 'o')).toEqual([])
    // 2 and 3 are held by a peer that offers them: not asked of the seeder either.
    expect(asked.map((r) => `${r.peer}/${r.index}`).sort()).toEqual(['p/0', 'p/1', 'seeder/4'])
  })

  it('takes an offered chunk that is missing and asked of nobody, in flight like a request', () => {
    const s = make(8)
    s.addPeer('o', 'peer', bits(8, [5]))
    s.setOffers('o')
    expect(s.accept('o', 5, 0)).toEqual({ answer: 'accept', index: 5 })
    expect(s.inflight).toBe(1)
    // In flight: offered again it is coming, and it is asked of nobody else.
    s.addPeer('p', 'peer', bits(8, [5]))
    expect(s.next(1)).toEqual([])
    expect(s.accept('p', 5, 1)).toEqual({ answer: 'coming', index: 5 })
    s.onChunk('o', 5, 2, 'ok')
    expect(s.has(5)).toBe(true)
    expect(s.inflight).toBe(0)
    expect(s.accept('p', 5, 3)).toEqual({ answer: 'have', index: 5 })
  })

  it('fills the slot with the rarest other chunk the sender holds when the offered one is not wanted', () => {
    const s = make(8)
    s.addPeer('o', 'peer', bits(8, [1, 2, 3]))
    s.addPeer('p', 'peer', bits(8, [2, 3]))
    s.addPeer('q', 'peer', bits(8, [3]))
    s.setOffers('o')
    s.markHave(3, 0)
    // 3 is held here; of 1 and 2 the sender holds, 1 is the rarer (only it holds 1).
    expect(s.accept('o', 3, 0)).toEqual({ answer: 'accept', index: 1 })
    expect(s.accept('o', 1, 0)).toEqual({ answer: 'accept', index: 2 })
    expect(s.accept('o', 2, 0)).toEqual({ answer: 'coming', index: 2 })
  })

  it('declines when the node or the download has no room, and takes from a peer not known yet', () => {
    const s = make(8, { inflightTotalMs: 2000, minInflightTotal: 1, maxInflightTotal: 1 })
    expect(s.accept('x', 0, 0, 0)).toEqual({ answer: 'full', index: 0 })
    expect(s.accept('x', 0, 0)).toEqual({ answer: 'accept', index: 0 })
    // The download's own cap (1 in flight) is reached.
    expect(s.accept('x', 1, 0)).toEqual({ answer: 'full', index: 1 })
    // 'x' was added as a peer that offers and holds what it offered: never asked before the endgame.
    expect(s.peerStats().map((p) => p.id)).toEqual(['x'])
    expect(s.next(1)).toEqual([])
    s.onChunk('x', 0, 5, 'ok')
    expect(s.has(0)).toBe(true)
  })
})
