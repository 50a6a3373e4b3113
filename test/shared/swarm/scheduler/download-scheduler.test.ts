import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import {
  type ChunkRequest,
  DownloadScheduler,
  type SchedulerOptions,
  seededRandom,
} from '../../../../shared/swarm/scheduler/index.ts'

const CHUNK = 1000

function bits(n: number, idx: Iterable<number>): Bitfield {
  const b = new Bitfield(n)
  for (const i of idx) b.set(i)
  return b
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i)
}

function make(n: number, opts: Partial<SchedulerOptions> = {}): DownloadScheduler {
  // Adaptive depth off unless a test asks: with 1 kB chunks every peer looks fast. The rate cap on the whole
  // download is off too: these tests are about the other policies, and it has its own below.
  const fixedDepth = { maxInflightPerFastPeer: opts.maxInflightPerPeer ?? 4 }
  return new DownloadScheduler({
    chunkCount: n,
    chunkBytes: () => CHUNK,
    random: seededRandom(1),
    inflightTotalMs: 0,
    ...fixedDepth,
    ...opts,
  })
}

function byPeer(reqs: readonly ChunkRequest[]): Record<string, number[]> {
  const out: Record<string, number[]> = {}
  for (const r of reqs) {
    const list = out[r.peer] ?? []
    list.push(r.index)
    out[r.peer] = list
  }
  for (const k of Object.keys(out)) out[k]!.sort((a, b) => a - b)
  return out
}

describe('DownloadScheduler', () => {
  it('picks rarest chunks first across three peers', () => {
    const s = make(6, { inOrderWindow: 0, maxInflightPerPeer: 2 })
    s.addPeer('a', 'peer', Bitfield.full(6))
    s.addPeer('b', 'peer', bits(6, [0, 1, 2, 3]))
    s.addPeer('c', 'peer', bits(6, [0, 1]))
    // 4 and 5 exist only on a, 2 and 3 on a and b: each peer ends up with the chunks only it can best supply.
    expect(byPeer(s.next(0))).toEqual({ a: [4, 5], b: [2, 3], c: [0, 1] })
  })

  it('asks for the rarest chunk first when slots are scarce', () => {
    const s = make(6, { inOrderWindow: 0, maxInflightPerPeer: 1, maxInflightTotal: 1 })
    s.addPeer('a', 'peer', Bitfield.full(6))
    s.addPeer('b', 'peer', bits(6, [0, 1, 2, 3, 5]))
    expect(s.next(0)).toEqual([{ peer: 'a', index: 4 }])
  })

  it('favours the chunks right after the verified prefix', () => {
    const s = make(16, { maxInflightPerPeer: 2 })
    s.addPeer('a', 'peer', Bitfield.full(16))
    s.addPeer('b', 'peer', bits(16, range(0, 8)))
    // Chunks 8..15 are rarer (only a), but the in-order window 0..3 goes first.
    expect(
      s
        .next(0)
        .map((r) => r.index)
        .sort((x, y) => x - y),
    ).toEqual([0, 1, 2, 3])

    s.onChunk('a', 0, 10, 'ok')
    s.onChunk('b', 1, 10, 'ok')
    expect(s.contiguous).toBe(2)
    expect(
      s
        .next(10)
        .map((r) => r.index)
        .sort((x, y) => x - y),
    ).toEqual([4, 5])

    const plain = make(16, { maxInflightPerPeer: 2, inOrderWindow: 0 })
    plain.addPeer('a', 'peer', Bitfield.full(16))
    plain.addPeer('b', 'peer', bits(16, range(0, 8)))
    const picks = byPeer(plain.next(0))
    expect(picks.a!.every((i) => i >= 8)).toBe(true)
  })

  it('bounds the pipeline per peer and in total', () => {
    const s = make(20)
    s.addPeer('a', 'peer', Bitfield.full(20))
    const first = s.next(0)
    expect(first).toHaveLength(4)
    expect(s.next(1)).toEqual([])
    s.onChunk('a', first[0]!.index, 5, 'ok')
    expect(s.next(5)).toHaveLength(1)
    expect(s.inflight).toBe(4)

    const t = make(20, { maxInflightTotal: 5 })
    for (const id of ['a', 'b', 'c']) t.addPeer(id, 'peer', Bitfield.full(20))
    expect(t.next(0)).toHaveLength(5)
    expect(t.next(0)).toEqual([])
  })

  it('asks for no more than the room it is given (the node budget shared with other downloads)', () => {
    const s = make(20)
    for (const id of ['a', 'b', 'c']) s.addPeer(id, 'peer', Bitfield.full(20))
    expect(s.next(0, 0)).toEqual([])
    expect(s.next(0, 2)).toHaveLength(2)
    expect(s.inflight).toBe(2)
    // Room is counted beyond what is already in flight; with no limit the pipelines bound it (3 peers × 4).
    expect(s.next(0, 3)).toHaveLength(3)
    expect(s.next(0)).toHaveLength(7)
  })

  it('deepens the pipeline of a fast peer and thins that of a slow one', () => {
    const mb = 1_000_000
    const s = new DownloadScheduler({
      chunkCount: 64,
      chunkBytes: () => mb,
      random: seededRandom(1),
      inflightTotalMs: 0,
    })
    s.addPeer('fast', 'peer', Bitfield.full(64))
    s.addPeer('slow', 'peer', Bitfield.full(64))
    const first = byPeer(s.next(0))
    // fast: 4 MB in 40 ms = 100 MB/s; slow: 1 MB in 10 s = 100 kB/s.
    for (const i of first.fast!) s.onChunk('fast', i, 40, 'ok')
    s.onChunk('slow', first.slow![0]!, 10_000, 'ok')
    const stats = Object.fromEntries(s.peerStats().map((p) => [p.id, p]))
    expect(stats.fast!.bytesPerSec).toBeCloseTo(100 * mb)
    expect(stats.fast!.depth).toBe(16)
    expect(stats.slow!.depth).toBe(2)
    const more = byPeer(s.next(10_000))
    expect(more.fast).toHaveLength(16)
    expect(more.slow).toBeUndefined() // still 3 in flight, above its new depth of 2
  })

  it('asks a seeder only for chunks no peer holds', () => {
    const s = make(4, { maxInflightPerPeer: 1 })
    s.addPeer('seed', 'seeder', Bitfield.full(4))
    s.addPeer('p', 'peer', bits(4, [0, 1]))
    expect(byPeer(s.next(0))).toEqual({ p: [0], seed: [2] })
    // p is busy, seed is busy; chunk 1 waits for p rather than costing the seeder.
    s.onChunk('seed', 2, 10, 'ok')
    expect(s.next(10)).toEqual([{ peer: 'seed', index: 3 }])
    s.onChunk('p', 0, 20, 'ok')
    expect(s.next(20)).toEqual([{ peer: 'p', index: 1 }])
  })

  it('falls back to the seeder once the only peer holding a chunk failed it', () => {
    const s = make(2, { maxInflightPerPeer: 1 })
    s.addPeer('seed', 'seeder', Bitfield.full(2))
    s.addPeer('p', 'peer', bits(2, [0]))
    expect(byPeer(s.next(0))).toEqual({ p: [0], seed: [1] })
    s.onChunk('seed', 1, 5, 'ok')
    s.onChunk('p', 0, 10, 'failed')
    expect(s.next(10)).toEqual([{ peer: 'seed', index: 0 }])
  })

  it('duplicates the tail in endgame and cancels the loser on first arrival', () => {
    const s = make(8, { inOrderWindow: 0, endgameRemaining: 2 })
    s.addPeer('a', 'peer', Bitfield.full(8))
    s.addPeer('b', 'peer', Bitfield.full(8))
    const first = byPeer(s.next(0))
    expect(first.a).toHaveLength(4)
    expect(first.b).toHaveLength(4)
    for (const i of first.a!) s.onChunk('a', i, 10, 'ok')
    expect(s.next(10)).toEqual([]) // 4 missing, all in flight on b: not yet endgame
    const [b0, b1, b2, b3] = first.b!
    s.onChunk('b', b0!, 20, 'ok')
    s.onChunk('b', b1!, 20, 'ok')
    const dups = s.next(20)
    expect(byPeer(dups)).toEqual({ a: [b2!, b3!].sort((x, y) => x - y) })
    s.addPeer('c', 'peer', Bitfield.full(8))
    expect(s.next(20)).toEqual([]) // at most endgameCopies (2) copies of a chunk
    expect(s.onChunk('a', b2!, 30, 'ok').cancel).toEqual([{ peer: 'b', index: b2 }])
    expect(s.onChunk('b', b3!, 31, 'ok').cancel).toEqual([{ peer: 'a', index: b3 }])
    expect(s.done).toBe(true)
    expect(s.inflight).toBe(0)
  })

  it('bans a peer that sent a bad chunk and re-queues the chunk to another peer', () => {
    const s = make(4, { maxInflightPerPeer: 2, banMs: 1000 })
    s.addPeer('a', 'peer', Bitfield.full(4))
    s.addPeer('b', 'peer', Bitfield.full(4))
    const first = byPeer(s.next(0))
    expect(first).toEqual({ a: [0, 2], b: [1, 3] })
    const { cancel } = s.onChunk('a', 0, 10, 'bad')
    expect(cancel).toEqual([{ peer: 'a', index: 2 }])
    expect(s.peerStats().find((p) => p.id === 'a')!.banned).toBe(true)
    expect(s.next(10)).toEqual([]) // b is full
    s.onChunk('b', 1, 20, 'ok')
    s.onChunk('b', 3, 20, 'ok')
    expect(byPeer(s.next(20))).toEqual({ b: [0, 2] })

    // The ban outlives a reconnect, and ends after banMs.
    s.removePeer('a')
    s.addPeer('a', 'peer', Bitfield.full(4))
    expect(s.peerStats().find((p) => p.id === 'a')!.banned).toBe(true)
    s.onChunk('b', 0, 1011, 'failed')
    expect(s.next(1011)).toEqual([{ peer: 'a', index: 0 }])
  })

  it('re-assigns the requests of a peer that made no progress', () => {
    const s = make(2, { maxInflightPerPeer: 1, requestTimeoutMs: 100 })
    s.addPeer('a', 'peer', Bitfield.full(2))
    s.addPeer('b', 'peer', Bitfield.full(2))
    expect(byPeer(s.next(0))).toEqual({ a: [0], b: [1] })
    s.onChunk('b', 1, 50, 'ok')
    expect(s.tick(100).timedOut).toEqual([])
    expect(s.tick(101).timedOut).toEqual([{ peer: 'a', index: 0 }])
    expect(s.next(101)).toEqual([{ peer: 'b', index: 0 }])
    expect(s.peerStats().find((p) => p.id === 'a')!.score).toBeLessThan(1)
    // A late arrival is still accepted, and cancels the re-assigned copy.
    expect(s.onChunk('a', 0, 120, 'ok').cancel).toEqual([{ peer: 'b', index: 0 }])
    expect(s.done).toBe(true)
  })

  it('judges lateness against the peer’s observed rate', () => {
    const s = make(4, { maxInflightPerPeer: 1, minTimeoutMs: 10 })
    s.addPeer('a', 'peer', Bitfield.full(4))
    s.addPeer('b', 'peer', Bitfield.full(4))
    s.next(0)
    s.onChunk('a', 0, 10, 'ok') // a: 1000 B in 10 ms
    expect(s.next(10)).toEqual([{ peer: 'a', index: 2 }])
    // 4 × 10 ms expected = 40 ms without progress; b (rate unknown) waits the full requestTimeoutMs.
    expect(s.tick(50).timedOut).toEqual([])
    expect(s.tick(51).timedOut).toEqual([{ peer: 'a', index: 2 }])
  })

  it('does not call a peer late while its bytes are arriving, but still applies the hard timeout', () => {
    const s = make(2, { maxInflightPerPeer: 1, requestTimeoutMs: 100, hardTimeoutMs: 1000 })
    s.addPeer('a', 'peer', Bitfield.full(2))
    s.addPeer('b', 'peer', Bitfield.full(2))
    expect(byPeer(s.next(0))).toEqual({ a: [0], b: [1] })
    s.onChunk('b', 1, 50, 'ok')
    // a sends slowly: each sign of life restarts its no-progress window.
    for (let t = 90; t < 1000; t += 90) {
      s.onProgress('a', t)
      expect(s.tick(t + 1).timedOut).toEqual([])
    }
    expect(s.tick(1000).timedOut).toEqual([{ peer: 'a', index: 0 }])
    // Progress from a peer with nothing in flight (or an unknown one) changes nothing.
    s.onProgress('b', 1000)
    s.onProgress('nobody', 1000)
    expect(s.next(1000)).toEqual([{ peer: 'b', index: 0 }])
    expect(s.tick(1101).timedOut).toEqual([{ peer: 'b', index: 0 }])
  })

  it('does not time out the only holder of a chunk before the hard timeout', () => {
    const s = make(1, { requestTimeoutMs: 100, hardTimeoutMs: 1000 })
    s.addPeer('a', 'peer', Bitfield.full(1))
    s.next(0)
    expect(s.tick(999).timedOut).toEqual([])
    expect(s.tick(1000).timedOut).toEqual([{ peer: 'a', index: 0 }])
    expect(s.next(1000)).toEqual([{ peer: 'a', index: 0 }])
  })

  it('re-queues the requests of a peer removed mid-flight', () => {
    const s = make(4, { maxInflightPerPeer: 2 })
    s.addPeer('a', 'peer', Bitfield.full(4))
    s.addPeer('b', 'peer', bits(4, [0, 1, 2]))
    expect(byPeer(s.next(0))).toEqual({ a: [0, 2], b: [1] })
    s.removePeer('a')
    expect(s.inflight).toBe(1)
    expect(s.unavailable()).toBe(1) // chunk 3 left with a
    expect(byPeer(s.next(5))).toEqual({ b: [0] })
    s.peerHas('b', 3)
    expect(s.unavailable()).toBe(0)
  })

  it('backs off a peer after consecutive failures', () => {
    const s = make(8, { maxInflightPerPeer: 1, maxConsecutiveFailures: 2, failureBackoffMs: 500 })
    s.addPeer('a', 'peer', Bitfield.full(8))
    const [r1] = s.next(0)
    s.onChunk('a', r1!.index, 1, 'failed')
    const [r2] = s.next(1)
    s.onChunk('a', r2!.index, 2, 'failed')
    expect(s.peerStats()[0]!.backoff).toBe(true)
    expect(s.next(2)).toEqual([])
    expect(s.next(502)).toHaveLength(1)
  })

  it('leaves a busy peer alone until it delivers or the pause ends, without penalty', () => {
    const s = make(4, { maxInflightPerPeer: 2, busyBackoffMs: 100, endgameRemaining: 0 })
    s.addPeer('a', 'peer', Bitfield.full(4))
    s.addPeer('b', 'peer', Bitfield.full(4))
    expect(byPeer(s.next(0))).toEqual({ a: [0, 2], b: [1, 3] })
    s.onChunk('a', 0, 5, 'busy')
    expect(s.next(5)).toEqual([]) // b is full, a said busy
    s.onChunk('a', 2, 10, 'ok')
    expect(s.next(10)).toEqual([{ peer: 'a', index: 0 }])
    expect(s.peerStats().find((p) => p.id === 'a')!.score).toBe(1)

    s.onChunk('a', 0, 20, 'busy')
    expect(s.next(119)).toEqual([])
    expect(s.next(120)).toEqual([{ peer: 'a', index: 0 }])
  })

  // next() answers [] at once while nothing it reads has changed (the agent calls it on every `have` update): these
  // are the changes that must still be seen.
  it('asks for a chunk a peer announces after a round that found nothing to ask for', () => {
    const s = make(4, { endgameRemaining: 0 })
    s.addPeer('a', 'peer', bits(4, []))
    expect(s.next(0)).toEqual([])
    expect(s.next(1)).toEqual([])
    s.peerHas('a', 2)
    expect(s.next(2)).toEqual([{ peer: 'a', index: 2 }])
    // An announcement of a chunk already asked for changes nothing; a new one does.
    s.peerHas('a', 2)
    expect(s.next(3)).toEqual([])
    s.peerHas('a', 3)
    expect(s.next(4)).toEqual([{ peer: 'a', index: 3 }])
  })

  it("doubles a peer's busy pause for each busy in a row, up to maxBusyBackoffMs, and resets it on delivery", () => {
    const s = make(2, { busyBackoffMs: 100, maxBusyBackoffMs: 300, endgameRemaining: 0 })
    s.addPeer('a', 'peer', bits(2, [0, 1]))
    const ask = (t: number) => s.next(t).map((r) => r.index)
    expect(ask(0)).toEqual(expect.arrayContaining([0, 1]))
    s.onChunk('a', 0, 0, 'busy') // pause 100
    s.onChunk('a', 1, 0, 'busy') // pause 200
    expect(ask(199)).toEqual([])
    expect(ask(200)).toHaveLength(2)
    s.onChunk('a', 0, 200, 'busy') // 400, capped at 300
    expect(ask(499)).toEqual([])
    expect(ask(500)).toEqual([0])
    s.onChunk('a', 1, 510, 'ok')
    s.onChunk('a', 0, 520, 'busy') // after a delivery: 100 again
    expect(ask(619)).toEqual([])
    expect(ask(620)).toEqual([0])
  })

  it('asks a busy peer again when its pause ends, with nothing else changed in between', () => {
    const s = make(2, { busyBackoffMs: 100, endgameRemaining: 0 })
    s.addPeer('a', 'peer', bits(2, [0]))
    expect(s.next(0)).toEqual([{ peer: 'a', index: 0 }])
    s.onChunk('a', 0, 10, 'busy')
    expect(s.next(10)).toEqual([])
    expect(s.next(50)).toEqual([])
    expect(s.next(109)).toEqual([])
    expect(s.next(110)).toEqual([{ peer: 'a', index: 0 }])
  })

  it('times out a request at the hard timeout after ticks that had nothing to do', () => {
    const s = make(2, { hardTimeoutMs: 1000, requestTimeoutMs: 100_000, minTimeoutMs: 100_000 })
    s.addPeer('a', 'peer', bits(2, [0]))
    expect(s.next(0)).toEqual([{ peer: 'a', index: 0 }])
    for (let t = 0; t < 1000; t += 100) expect(s.tick(t).timedOut).toEqual([])
    expect(s.tick(1000).timedOut).toEqual([{ peer: 'a', index: 0 }])
  })

  it('is deterministic for a seed', () => {
    const run = (seed: number) => {
      const s = make(64, { inOrderWindow: 0, random: seededRandom(seed) })
      s.addPeer('a', 'peer', Bitfield.full(64))
      s.addPeer('b', 'peer', bits(64, range(0, 32)))
      const log: ChunkRequest[] = []
      for (let t = 0; t < 40 && !s.done; t++) {
        const reqs = s.next(t)
        log.push(...reqs)
        for (const r of reqs) s.onChunk(r.peer, r.index, t + 1, 'ok')
      }
      expect(s.done).toBe(true)
      return log
    }
    expect(run(7)).toEqual(run(7))
    expect(run(7)).not.toEqual(run(8))
  })

  it('tracks done, missing and resumed chunks', () => {
    const s = make(3)
    expect(s.done).toBe(false)
    expect(s.missing).toBe(3)
    s.markHave(0)
    s.markHave(0)
    expect(s.missing).toBe(2)
    s.addPeer('a', 'peer', Bitfield.full(3))
    const reqs = s.next(0)
    expect(reqs.map((r) => r.index)).toEqual([1, 2])
    expect(s.markHave(1).cancel).toEqual([{ peer: 'a', index: 1 }])
    s.onChunk('a', 2, 5, 'ok')
    expect(s.done).toBe(true)
    expect(s.missing).toBe(0)
    expect(s.contiguous).toBe(3)
    expect(s.next(6)).toEqual([])
  })

  it('rejects a bitfield of the wrong length', () => {
    const s = make(3)
    expect(() => s.addPeer('a', 'peer', new Bitfield(4))).toThrow(
      expect.objectContaining({ name: 'SchedulerError', code: 'SCHEDULER_BITFIELD_LENGTH' }),
    )
  })
})

describe('DownloadScheduler: requests in flight follow the rate the blob arrives at', () => {
  const MIB = 1024 * 1024
  // 100 chunks of 1 MiB, 16 peers holding all: only the total cap can bind (16 × 4 = 64 per-peer places).
  function rated(opts: Partial<SchedulerOptions> = {}): DownloadScheduler {
    const s = new DownloadScheduler({ chunkCount: 100, chunkBytes: () => MIB, random: seededRandom(3), ...opts })
    for (let i = 0; i < 16; i++) s.addPeer(`p${i}`, 'peer', Bitfield.full(100))
    return s
  }

  it('starts with minInflightTotal requests while nothing has arrived', () => {
    expect(rated().next(0)).toHaveLength(2)
    expect(rated({ minInflightTotal: 5 }).next(0)).toHaveLength(5)
    expect(rated({ minInflightTotal: 5 }).inflightCap(0)).toBe(5)
  })

  it('opens up to inflightTotalMs of transfer at the rate chunks arrive, capped by maxInflightTotal', () => {
    const s = rated()
    let now = 0
    const inflight = s.next(now)
    // 4 MiB/s for 2 s: each chunk 250 ms after the one before.
    for (let k = 0; k < 8; k++) {
      now += 250
      const r = inflight.shift()!
      s.onChunk(r.peer, r.index, now, 'ok')
      inflight.push(...s.next(now))
    }
    // 8 MiB over the 2 s since the first request: 4 MiB/s × 2 s = 8 chunks queued, plus the one arriving.
    expect(s.inflightCap(now)).toBe(9)
    expect(s.inflight).toBe(9)
    expect(inflight).toHaveLength(9)
    // Arrivals worth far more than maxInflightTotal (60 MiB/s for 1 s): the cap holds.
    const fast = rated()
    let t = 0
    for (let k = 0; k < 30; t += 10) {
      for (const r of fast.next(t)) if (k++ < 30) fast.onChunk(r.peer, r.index, t, 'ok')
    }
    expect(t).toBeLessThan(1000)
    expect(fast.inflightCap(1000)).toBe(32)
  })

  it('closes down again when arrivals slow, and forgets arrivals older than the rate window', () => {
    const s = rated()
    const first = s.next(0)
    for (const [k, r] of first.entries()) s.onChunk(r.peer, r.index, 100 + k, 'ok')
    // 2 MiB within the first second (measured over at least 1 s): 2 MiB/s × 2 s = 4 queued + 1.
    expect(s.inflightCap(1000)).toBe(5)
    // 10 s later those arrivals are out of the window: back to the floor.
    expect(s.inflightCap(12_000)).toBe(2)
  })

  it('counts each chunk once: a late duplicate in endgame adds no rate', () => {
    const s = rated()
    const [a] = s.next(0)
    s.onChunk(a!.peer, a!.index, 500, 'ok')
    const once = s.inflightCap(1000)
    s.onChunk(a!.peer, a!.index, 600, 'ok')
    expect(s.inflightCap(1000)).toBe(once)
  })

  it('with inflightTotalMs 0, keeps maxInflightTotal in flight from the start', () => {
    expect(rated({ inflightTotalMs: 0, maxInflightTotal: 20 }).next(0)).toHaveLength(20)
  })
})
