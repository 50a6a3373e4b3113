import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { type ChunkRequest, DownloadScheduler, seededRandom } from '../../../../shared/swarm/scheduler/index.ts'

// The scheduler keeps what next() reads of each peer in arrays by the peer's place in its list. These cases move
// peers between places (a removal), grow the arrays past their first size and change a peer after it moved: next()
// must still see each peer's own bitfield, pipeline and pause.

function bits(n: number, idx: Iterable<number>): Bitfield {
  const b = new Bitfield(n)
  for (const i of idx) b.set(i)
  return b
}

function sorted(reqs: readonly ChunkRequest[]): string[] {
  return reqs.map((r) => `${r.peer}:${r.index}`).sort()
}

function make(n: number): DownloadScheduler {
  return new DownloadScheduler({
    chunkCount: n,
    chunkBytes: () => 1000,
    random: seededRandom(1),
    inflightTotalMs: 0,
    maxInflightPerPeer: 1,
    maxInflightPerFastPeer: 1,
    inOrderWindow: 0,
    maxInflightTotal: 100,
  })
}

describe('DownloadScheduler peer slots', () => {
  it('asks each peer for what it holds after an earlier peer is removed', () => {
    const s = make(4)
    s.addPeer('a', 'peer', bits(4, [0]))
    s.addPeer('b', 'peer', bits(4, [1]))
    s.addPeer('c', 'peer', bits(4, [2]))
    s.removePeer('a')
    expect(sorted(s.next(0))).toEqual(['b:1', 'c:2'])
  })

  it('keeps a moved peer’s later announcements, pipeline and busy pause', () => {
    const s = make(4)
    s.addPeer('a', 'peer', bits(4, []))
    s.addPeer('b', 'peer', bits(4, [1]))
    s.addPeer('c', 'peer', bits(4, []))
    s.removePeer('a')
    s.peerHas('c', 3)
    expect(sorted(s.next(0))).toEqual(['b:1', 'c:3'])
    // c said busy: chunk 3 is not asked of it again until its pause ends; b's pipeline is full.
    s.onChunk('c', 3, 1, 'busy')
    expect(s.next(2)).toEqual([])
    expect(sorted(s.next(10_000))).toEqual(['c:3'])
  })

  it('tracks many peers (past the arrays’ first size) and replaced bitfields', () => {
    const n = 40
    const s = make(n)
    for (let i = 0; i < n; i++) s.addPeer(`p${i}`, 'peer', bits(n, [i]))
    // p5 now holds chunk 6 instead of 5: 5 has no holder left, 6 has two.
    s.addPeer('p5', 'peer', bits(n, [6]))
    const got = s.next(0)
    expect(got).toHaveLength(n - 1)
    expect(got.some((r) => r.index === 5)).toBe(false)
    const asked = new Map(got.map((r) => [r.index, r.peer]))
    for (let i = 0; i < n; i++) if (i !== 5 && i !== 6) expect(asked.get(i)).toBe(`p${i}`)
    expect(['p5', 'p6']).toContain(asked.get(6))
  })
})
