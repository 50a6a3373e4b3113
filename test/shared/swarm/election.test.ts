import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { rendezvousOrder, rendezvousOwner, rendezvousScore, turn } from '../../../shared/swarm/index.ts'

// Five real Ed25519 peer ids and six blob digests; the owners and orders below were computed with the two rules this
// one replaced (the agent's Swarm#rendezvous / #findMap order and the seeder's rendezvousOwners, release 1d99df5).
// Old agents and new seeders share a swarm during a rolling upgrade: these must never move.
const IDS = [
  '12D3KooWBpF5v9wwxuH4GepBKSiLPsU2KznqyXAfnPqnNPWzLKhh',
  '12D3KooWPdxMqm4HzsHYm2jyLExeuWLLD64f4c3syn8SkGAeNqcD',
  '12D3KooWCr6d344buApfXWG8obvzJ6zEWsQRsujSrMrDaDR91Ube',
  '12D3KooWScFTukefURpG6KRZU2QYZX3sJ83GuMcMWicRStctoY97',
  '12D3KooWQWbqfnb9k5VsgEtio9MHiFC3GW7ZUDos1kq3LhQGnKbR',
] as const
const digest = (i: number): string => `sha256:${createHash('sha256').update(`blob-${i}`).digest('hex')}`
/** Rendezvous order (indexes into IDS) of digest(i) over all five ids, as the old agent sorted them. */
const PINNED: readonly (readonly number[])[] = [
  [2, 0, 4, 3, 1],
  [0, 4, 2, 1, 3],
  [1, 4, 2, 0, 3],
  [0, 3, 4, 1, 2],
  [2, 3, 0, 1, 4],
  [2, 0, 4, 1, 3],
]

const ids = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 12 })
const key = fc.string({ maxLength: 80 })

describe('rendezvous election', () => {
  it('keeps the score of every earlier release: sha256(id "\\n" key), first 4 bytes big-endian', () => {
    expect(digest(0)).toBe('sha256:b49b7b4fe5f5fa8fc9542e41c7628ee60433bb8cdf69b224695a5cd8d973b4ad')
    expect(rendezvousScore(IDS[2], digest(0))).toBe(0xd47d3977)
    expect(rendezvousScore(IDS[0], digest(1))).toBe(0xfa2678df)
    expect(rendezvousScore(IDS[1], digest(2))).toBe(0xfed27e83)
  })

  it('orders and elects exactly as the agent and the seeder did before', () => {
    PINNED.forEach((order, i) => {
      const want = order.map((j) => IDS[j])
      expect(rendezvousOrder(IDS, digest(i))).toEqual(want)
      expect(rendezvousOwner(IDS, digest(i))).toBe(want[0])
      // The listing order of the candidates does not matter (the seeder lists itself first, agents their config).
      expect(rendezvousOrder([...IDS].reverse(), digest(i))).toEqual(want)
      // Objects with an id rank as their id does.
      expect(
        rendezvousOrder(
          IDS.map((id) => ({ id })),
          digest(i),
        ).map((c) => c.id),
      ).toEqual(want)
    })
  })

  it('ranks by score, highest first', () => {
    fc.assert(
      fc.property(ids, key, (cs, k) => {
        const scores = rendezvousOrder(cs, k).map((id) => rendezvousScore(id, k))
        for (let i = 1; i < scores.length; i++) expect(scores[i - 1]!).toBeGreaterThanOrEqual(scores[i]!)
      }),
    )
  })

  it('is a permutation of the candidates, one entry per id, and the owner is its first', () => {
    fc.assert(
      fc.property(ids, key, (cs, k) => {
        const order = rendezvousOrder([...cs, ...cs], k)
        expect([...order].sort()).toEqual([...cs].sort())
        expect(rendezvousOwner(cs, k)).toBe(order[0])
      }),
    )
    expect(rendezvousOwner([], 'k')).toBeUndefined()
    expect(rendezvousOrder([], 'k')).toEqual([])
  })

  it('never moves the owner when a candidate that is not the owner leaves', () => {
    fc.assert(
      fc.property(ids, key, fc.nat(), (cs, k, pick) => {
        const owner = rendezvousOwner(cs, k)
        const others = cs.filter((c) => c !== owner)
        fc.pre(others.length > 0)
        const gone = others[pick % others.length]
        expect(
          rendezvousOwner(
            cs.filter((c) => c !== gone),
            k,
          ),
        ).toBe(owner)
      }),
    )
  })

  it('hands the key to the second when the owner leaves, and keeps the rest of the order', () => {
    fc.assert(
      fc.property(ids, key, (cs, k) => {
        const [owner, ...rest] = rendezvousOrder(cs, k)
        expect(
          rendezvousOrder(
            cs.filter((c) => c !== owner),
            k,
          ),
        ).toEqual(rest)
        expect(
          rendezvousOwner(
            cs.filter((c) => c !== owner),
            k,
          ),
        ).toBe(rest[0])
      }),
    )
  })

  it('gives a joining candidate only the keys it wins', () => {
    fc.assert(
      fc.property(ids, key, fc.string({ minLength: 13, maxLength: 20 }), (cs, k, joiner) => {
        const before = rendezvousOwner(cs, k)
        const after = rendezvousOwner([...cs, joiner], k)
        expect(after === before || after === joiner).toBe(true)
      }),
    )
  })
})

describe('turn: who acts when the owner is gone or slow', () => {
  const order = ['a', 'b', 'c'] as const

  it('is the owner while it is live and making progress', () => {
    expect(turn(order)).toEqual({ acting: 'a', stalled: [], graceMs: Infinity })
    expect(turn(order, { stalledMs: 400, stallTimeoutMs: 1000 })).toEqual({ acting: 'a', stalled: [], graceMs: 600 })
  })

  it('skips candidates known down, and has nobody left when all are', () => {
    expect(turn(order, { down: new Set(['a']) }).acting).toBe('b')
    expect(turn(order, { down: new Set(['a', 'b']) }).acting).toBe('c')
    expect(turn(order, { down: new Set(['a', 'b', 'c']) })).toEqual({
      acting: undefined,
      stalled: [],
      graceMs: Infinity,
    })
  })

  it('passes to the next live candidate once the one acting showed no progress for the stall timeout', () => {
    expect(turn(order, { stalledMs: 999, stallTimeoutMs: 1000 }).acting).toBe('a')
    expect(turn(order, { stalledMs: 1000, stallTimeoutMs: 1000 })).toEqual({
      acting: 'b',
      stalled: ['a'],
      graceMs: 1000,
    })
    // One timeout per stalled candidate, down ones skipped without waiting.
    expect(turn(order, { stalledMs: 1500, stallTimeoutMs: 1000, down: new Set(['b']) })).toEqual({
      acting: 'c',
      stalled: ['a'],
      graceMs: 500,
    })
    expect(turn(order, { stalledMs: 3000, stallTimeoutMs: 1000 })).toEqual({
      acting: undefined,
      stalled: ['a', 'b', 'c'],
      graceMs: Infinity,
    })
  })

  it('agrees with a caller that counts stalled candidates down and restarts its clock', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 5000 }), { maxLength: 6 }),
        fc.integer({ min: 1, max: 2000 }),
        (waits, timeout) => {
          // Caller A measures since the key's last progress; caller B marks each stalled candidate down and restarts.
          const ids = ['a', 'b', 'c', 'd', 'e']
          const total = waits.reduce((s, w) => s + w, 0)
          const a = turn(ids, { stalledMs: total, stallTimeoutMs: timeout })
          const down = new Set<string>()
          let clock = 0
          for (const w of waits) {
            clock += w
            for (;;) {
              const t = turn(ids, { down, stalledMs: clock, stallTimeoutMs: timeout })
              if (t.stalled.length === 0) break
              for (const s of t.stalled) down.add(s)
              clock -= timeout * t.stalled.length
            }
          }
          const b = turn(ids, { down, stalledMs: clock, stallTimeoutMs: timeout })
          expect(b.acting).toBe(a.acting)
          expect([...down]).toEqual(a.stalled)
        },
      ),
    )
  })

  it('refuses a stall timeout that is not positive', () => {
    expect(() => turn(order, { stallTimeoutMs: 0 })).toThrow(RangeError)
  })
})
