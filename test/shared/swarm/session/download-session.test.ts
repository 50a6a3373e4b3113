import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { ReceiveBudget, StallClocks } from '../../../../shared/swarm/scheduler/index.ts'
import {
  BUDGET_QUIET_MS,
  CHUNK_IDLE_MS,
  DownloadSession,
  MAP_RECHECK_MS,
  REDISCOVER_MS,
  SessionError,
  systemClock,
  TICK_MS,
} from '../../../../shared/swarm/session/index.ts'
import { all, attestation, CHUNK_BYTES, content, hash, world } from './fakes.ts'

describe('DownloadSession', () => {
  it('fills the blob from several peers, every chunk as the peers hold it', () => {
    const n = 24
    const w = world({
      chunkCount: n,
      peers: [
        { id: 'a', kind: 'peer', have: all(n), behaviour: { kind: 'honest' } },
        { id: 'b', kind: 'peer', have: all(n), behaviour: { kind: 'honest' } },
        { id: 's', kind: 'seeder', have: all(n), behaviour: { kind: 'honest' } },
      ],
    })
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    expect([...w.written.keys()].sort((x, y) => x - y)).toEqual(all(n))
    for (const [i, bytes] of w.written) expect(bytes).toEqual(content(i))
    const asked = new Set(w.fetches.map((f) => f.peer))
    expect(asked.has('a') && asked.has('b')).toBe(true)
    // The seeder is the last resort: peers held every chunk.
    expect(w.fetches.filter((f) => f.peer === 's')).toEqual([])
    expect(w.bans.size).toBe(0)
  })

  it('keeps within the node budget it shares with other downloads, and gives every request back', () => {
    class Watched extends ReceiveBudget {
      peak = 0
      override take(): void {
        super.take()
        this.peak = Math.max(this.peak, this.used)
      }
    }
    const n = 24
    const budget = new Watched(1)
    const w = world({
      chunkCount: n,
      peers: [
        { id: 'a', kind: 'peer', have: all(n), behaviour: { kind: 'honest' } },
        { id: 'b', kind: 'peer', have: all(n), behaviour: { kind: 'honest' } },
      ],
      init: { budget },
    })
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    // Alone, the session keeps several requests in flight (two peers' pipelines); the budget allows one.
    expect(budget.peak).toBe(1)
    expect(budget.used).toBe(0)
  })

  it('asks nothing while other downloads hold the node budget, and asks as soon as one gives some back', () => {
    const n = 4
    const budget = new ReceiveBudget(2)
    budget.take()
    budget.take()
    const w = world({
      chunkCount: n,
      peers: [{ id: 'a', kind: 'peer', have: all(n), behaviour: { kind: 'honest' } }],
      init: { budget },
    })
    w.clock.run(1_050)
    expect(w.fetches).toEqual([])
    budget.give()
    w.clock.run(1_051)
    // Woken by the budget, not by its next tick (every TICK_MS).
    expect(w.fetches.map((f) => f.at)).toEqual([1_050])
    budget.give()
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    expect(budget.used).toBe(0)
  })

  it('stops counting a request that brings no byte against the node budget, so the node asks someone else', () => {
    const budget = new ReceiveBudget(1)
    const w = world({
      chunkCount: 2,
      peers: [
        { id: 'mute', kind: 'peer', have: [0], behaviour: { kind: 'silent' } },
        { id: 'good', kind: 'peer', have: [1], behaviour: { kind: 'honest' } },
      ],
      init: { budget },
    })
    w.clock.run(BUDGET_QUIET_MS + 500)
    expect(w.fetches.map((f) => f.peer)).toEqual(['mute', 'good'])
    const second = w.fetches[1]!.at - w.fetches[0]!.at
    // Not before the quiet time, and well before the idle window would have dropped the silent request.
    expect(second).toBeGreaterThan(BUDGET_QUIET_MS)
    expect(second).toBeLessThanOrEqual(BUDGET_QUIET_MS + TICK_MS)
    expect(w.fetches[0]!.abortedAt).toBeUndefined()
    expect(w.written.has(1)).toBe(true)
  })

  it('bans a peer whose chunk fails its hash, and never writes that chunk', () => {
    const n = 16
    const w = world({
      chunkCount: n,
      peers: [
        { id: 'liar', kind: 'peer', have: all(n), behaviour: { kind: 'corrupt' } },
        { id: 'good', kind: 'peer', have: all(n), behaviour: { kind: 'honest' } },
      ],
    })
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    for (const [i, bytes] of w.written) expect(hash(bytes)).toBe(hash(content(i)))
    expect(w.rejected.length).toBeGreaterThan(0)
    expect(w.rejected.every((r) => r.peer === 'liar' && r.reason === 'hash')).toBe(true)
    expect(w.bans.get('liar')).toBeGreaterThan(w.clock.t)
    // Banned on its first lie: no request to it after the first rejected answer.
    const firstLie = w.fetches.findIndex((f) => f.peer === 'liar')
    const askedAfter = w.fetches.filter((f) => f.peer === 'liar' && f.at > w.fetches[firstLie]!.at + 10)
    expect(askedAfter).toEqual([])
  })

  it('bans a peer whose attestation is not a trusted seeder’s (a cold blob, no map)', () => {
    const n = 8
    const w = world({
      chunkCount: n,
      map: false,
      peers: [
        { id: 'forger', kind: 'peer', have: all(n), behaviour: { kind: 'honest' }, signer: 'mallory' },
        { id: 'good', kind: 'peer', have: all(n), behaviour: { kind: 'honest' }, signer: 'seeder' },
      ],
    })
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    expect(w.written.size).toBe(n)
    expect(w.rejected.length).toBeGreaterThan(0)
    expect(w.rejected.every((r) => r.peer === 'forger' && r.reason === 'forged')).toBe(true)
    expect(w.bans.has('forger')).toBe(true)
    expect(w.bans.has('good')).toBe(false)
  })

  it('writes nothing it cannot prove, and looks for the map at most every MAP_RECHECK_MS until it is found', () => {
    const n = 8
    const w = world({
      chunkCount: n,
      mapFoundAtMs: 2000,
      peers: [{ id: 'p', kind: 'peer', have: all(n), behaviour: { kind: 'honest' } }],
    })
    w.clock.run(1999)
    expect(w.written.size).toBe(0)
    expect(w.rejected.length).toBeGreaterThan(0)
    expect(w.rejected.every((r) => r.reason === 'unproven')).toBe(true)
    for (let i = 1; i < w.mapChecks.length; i++) {
      expect(w.mapChecks[i]! - w.mapChecks[i - 1]!).toBeGreaterThanOrEqual(MAP_RECHECK_MS)
    }
    // Not a lie: the peer is not banned.
    expect(w.bans.size).toBe(0)
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    expect(w.written.size).toBe(n)
  })

  it('drops a request that brings no byte for the idle window, though its peer is the only holder', () => {
    const w = world({
      chunkCount: 1,
      peers: [{ id: 'mute', kind: 'peer', have: [0], behaviour: { kind: 'silent', firstByteMs: 5 } }],
      // The scheduler's own timeouts (a quarter and half the stall timeout) are far away.
      init: { stallTimeoutMs: 600_000 },
    })
    w.clock.run(3 * CHUNK_IDLE_MS)
    const first = w.fetches[0]!
    expect(first.abortedAt).toBeDefined()
    expect(first.abortedAt! - (first.at + 5)).toBeGreaterThan(CHUNK_IDLE_MS)
    expect(first.abortedAt! - (first.at + 5)).toBeLessThanOrEqual(CHUNK_IDLE_MS + TICK_MS)
    expect(w.session.counts.idle).toBeGreaterThanOrEqual(1)
    // Told to the scheduler as a failure.
    expect(w.session.counts.failed).toBeGreaterThanOrEqual(1)
    expect(w.end).toBeUndefined()
  })

  it('keeps a request whose bytes keep coming, however long the chunk takes', () => {
    const w = world({
      chunkCount: 1,
      peers: [
        { id: 'slow', kind: 'peer', have: [0], behaviour: { kind: 'trickle', everyMs: 4000, doneAfterMs: 30_000 } },
      ],
      init: { stallTimeoutMs: 600_000 },
    })
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    expect(w.fetches).toHaveLength(1)
    expect(w.fetches[0]!.abortedAt).toBeUndefined()
    expect(w.session.counts.idle).toBe(0)
  })

  it('ends as stalled when nothing arrives for the stall timeout, dropping its requests', () => {
    const w = world({
      chunkCount: 4,
      peers: [{ id: 'mute', kind: 'peer', have: all(4), behaviour: { kind: 'silent' } }],
      init: { stallTimeoutMs: 3000 },
    })
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBeInstanceOf(SessionError)
    expect((w.end as SessionError).code).toBe('SESSION_STALLED')
    expect(w.endedAt).toBeGreaterThan(3000)
    expect(w.endedAt).toBeLessThanOrEqual(3000 + TICK_MS)
    expect(w.fetches.length).toBeGreaterThan(0)
    expect(w.fetches.every((f) => f.abortedAt !== undefined)).toBe(true)
    expect(w.fetches.some((f) => f.abortedAt === w.endedAt)).toBe(true)
    expect(w.followSignal?.aborted).toBe(true)
  })

  it('stops at once when its signal aborts: requests dropped, holders let go, nothing asked after', () => {
    const n = 8
    const w = world({
      chunkCount: n,
      peers: [{ id: 'slow', kind: 'peer', have: all(n), behaviour: { kind: 'honest' }, latencyMs: 1000 }],
    })
    w.clock.run(1500)
    expect(w.fetches.length).toBeGreaterThan(0)
    const reason = new Error('shutting down')
    w.controller.abort(reason)
    expect(w.end).toBe(reason)
    const asked = w.fetches.length
    w.clock.run(60_000)
    expect(w.fetches).toHaveLength(asked)
    expect(w.fetches.every((f) => f.abortedAt !== undefined || w.written.has(f.index))).toBe(true)
    expect(w.written.size).toBeLessThan(n)
    expect(w.followSignal?.aborted).toBe(true)
  })

  it('looks for more holders every REDISCOVER_MS', () => {
    const w = world({
      chunkCount: 2,
      peers: [{ id: 'mute', kind: 'peer', have: [0, 1], behaviour: { kind: 'silent', firstByteMs: 1 } }],
      init: { stallTimeoutMs: 600_000 },
    })
    w.clock.run(3 * REDISCOVER_MS + TICK_MS / 2)
    expect(w.discovered).toEqual([0, REDISCOVER_MS, 2 * REDISCOVER_MS, 3 * REDISCOVER_MS])
  })

  it('runs a scheduling pass when woken between ticks, one for several wake-ups', () => {
    const w = world({
      chunkCount: 2,
      peers: [{ id: 'mute', kind: 'peer', have: [0, 1], behaviour: { kind: 'silent' } }],
      init: { stallTimeoutMs: 600_000, tickMs: 10_000, rediscoverMs: 10_000 },
    })
    w.clock.run(100)
    const passes = w.polls.length
    w.session.wake()
    w.session.wake()
    w.clock.run(101)
    expect(w.polls.slice(passes)).toEqual([100])
  })

  it('waits for an asynchronous verifier and sink on the wall clock', async () => {
    const n = 6
    const written = new Map<number, Uint8Array>()
    const session = new DownloadSession(
      {
        clock: systemClock(),
        fetcher: {
          fetch(call) {
            const t = setTimeout(
              () =>
                call.settle({
                  kind: 'chunk',
                  bytes: content(call.index),
                  attestation: attestation(call.index, 'seeder'),
                }),
              2,
            )
            return { abort: () => clearTimeout(t) }
          },
        },
        holders: {
          follow(sink) {
            setTimeout(() => sink.addPeer('p', 'peer', Bitfield.full(n)), 1)
          },
          discover() {},
        },
        verifier: {
          fromMap: () => undefined,
          recheckMap: async () => false,
          // The proof comes later, as a signature check's would.
          attested: async () => {
            await new Promise((r) => setTimeout(r, 1))
            return true
          },
          check() {},
        },
        sink: {
          has: (i) => written.has(i),
          verified: () => [],
          write: async (i, bytes) => {
            await new Promise((r) => setTimeout(r, 1))
            written.set(i, bytes)
          },
        },
      },
      {
        chunkCount: n,
        chunkBytes: () => CHUNK_BYTES,
        stallTimeoutMs: 5000,
        random: Math.random,
        stall: new StallClocks(),
        signal: AbortSignal.timeout(10_000),
      },
    )
    await session.run()
    expect([...written.keys()].sort((a, b) => a - b)).toEqual(all(n))
  })
})
