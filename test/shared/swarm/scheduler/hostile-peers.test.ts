/**
 * The scheduler against peers that advertise chunks and then hold them hostage: always 'busy', or late round
 * after round. Their chunks must reach the other holders (a seeder included) within a bounded number of rounds.
 */
import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { DownloadScheduler, type SchedulerOptions, seededRandom } from '../../../../shared/swarm/scheduler/index.ts'

function make(n: number, opts: Partial<SchedulerOptions> = {}): DownloadScheduler {
  return new DownloadScheduler({
    chunkCount: n,
    chunkBytes: () => 1000,
    random: seededRandom(7),
    maxInflightPerPeer: 2,
    maxInflightPerFastPeer: 2,
    endgameRemaining: 0,
    // The rate cap on the whole download has its own tests (download-scheduler.test.ts).
    inflightTotalMs: 0,
    ...opts,
  })
}

describe('DownloadScheduler against peers that claim chunks and do not serve them', () => {
  it('asks the seeder for a chunk once the only peer holding it has been busy too many times in a row', () => {
    const s = make(1, { busyBackoffMs: 10, maxConsecutiveBusy: 3 })
    s.addPeer('liar', 'peer', Bitfield.full(1))
    s.addPeer('seed', 'seeder', Bitfield.full(1))
    const asked: string[] = []
    let t = 0
    for (let round = 0; round < 20 && !s.done; round++, t += 10) {
      for (const r of s.next(t)) {
        asked.push(r.peer)
        s.onChunk(r.peer, r.index, t, r.peer === 'liar' ? 'busy' : 'ok')
      }
    }
    expect(s.done).toBe(true)
    // Three busy answers are patience (the chunk waits for that peer), the fourth is a refusal.
    expect(asked).toEqual(['liar', 'liar', 'liar', 'liar', 'seed'])
    expect(s.peerStats().find((p) => p.id === 'liar')!.score).toBeLessThan(1)
  })

  it('forgives busy answers once the peer delivers', () => {
    const s = make(4, { busyBackoffMs: 0, maxConsecutiveBusy: 2, maxInflightPerPeer: 1, maxInflightPerFastPeer: 1 })
    s.addPeer('a', 'peer', Bitfield.full(4))
    s.addPeer('seed', 'seeder', Bitfield.full(4))
    const answers = ['busy', 'busy', 'ok', 'busy', 'busy', 'ok', 'ok', 'ok'] as const
    const asked: string[] = []
    for (let t = 0; t < answers.length && !s.done; t++) {
      for (const r of s.next(t)) {
        asked.push(r.peer)
        s.onChunk(r.peer, r.index, t, answers[t]!)
      }
    }
    // Never more than two busy answers in a row: the seeder is not needed.
    expect(asked.every((p) => p === 'a')).toBe(true)
    expect(s.done).toBe(true)
  })

  it('rests a peer that is late round after round, so it stops taking fresh chunks', () => {
    const s = make(64, { requestTimeoutMs: 100, maxConsecutiveFailures: 3, failureBackoffMs: 10_000 })
    s.addPeer('silent', 'peer', Bitfield.full(64))
    s.addPeer('seed', 'seeder', Bitfield.full(64))
    let toSilent = 0
    for (let t = 0; t < 5_000 && !s.done; t += 10) {
      s.tick(t)
      for (const r of s.next(t)) {
        if (r.peer === 'silent') toSilent++
        else s.onChunk(r.peer, r.index, t, 'ok')
      }
    }
    expect(s.done).toBe(true)
    // Three late rounds of two requests each, then it rests for longer than the download takes.
    expect(toSilent).toBe(6)
    expect(s.peerStats().find((p) => p.id === 'silent')!.backoff).toBe(true)
  })

  it('does not rest a late seeder: it is slow, not lying, and often the only holder', () => {
    const s = make(8, { requestTimeoutMs: 100, maxConsecutiveFailures: 1, hardTimeoutMs: 150 })
    s.addPeer('seed', 'seeder', Bitfield.full(8))
    s.next(0)
    expect(s.tick(150).timedOut).toHaveLength(2)
    expect(s.peerStats()[0]!.backoff).toBe(false)
    expect(s.next(150)).toHaveLength(2)
  })
})

describe('DownloadScheduler bans shared between downloads', () => {
  it('shuns a peer banned by another download, the one under way included, until the ban ends', () => {
    const bans = new Map<string, number>()
    const a = make(4, { bans, banMs: 1000 })
    const b = make(4, { bans, banMs: 1000 })
    for (const s of [a, b]) {
      s.addPeer('liar', 'peer', Bitfield.full(4))
      s.addPeer('seed', 'seeder', Bitfield.full(4))
    }
    const [first] = a.next(0)
    expect(first!.peer).toBe('liar')
    a.onChunk('liar', first!.index, 5, 'bad')
    expect(bans.get('liar')).toBe(1005)
    // b had the liar attached already: its next requests go to the seeder only.
    expect(b.next(10).every((r) => r.peer === 'seed')).toBe(true)
    expect(b.peerStats().find((p) => p.id === 'liar')!.banned).toBe(true)
    // A download that starts later never asks it either, until the ban ends.
    const c = make(4, { bans })
    c.addPeer('liar', 'peer', Bitfield.full(4))
    expect(c.next(20)).toEqual([])
    expect(c.next(1005).map((r) => r.peer)).toEqual(['liar', 'liar'])
  })
})
