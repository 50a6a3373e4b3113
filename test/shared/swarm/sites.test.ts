import { describe, expect, it } from 'vitest'
import { rendezvousOrder } from '../../../shared/swarm/election.ts'
import { chunkKey, sameSite, SiteElection } from '../../../shared/swarm/sites.ts'

const BLOB = 'sha256:' + 'ab'.repeat(32)
const MEMBERS = ['n1', 'n2', 'n3', 'n4']

function election(self: string, takeoverMs = 1000): SiteElection {
  const e = new SiteElection({ self, blob: BLOB, takeoverMs })
  for (const m of MEMBERS) e.join(m, 0)
  return e
}

/** The member that owns chunk i in rendezvous order, and the one after it. */
function owners(i: number): string[] {
  return rendezvousOrder(MEMBERS, chunkKey(BLOB, i))
}

describe('sameSite', () => {
  it('holds only for two equal, defined sites', () => {
    expect(sameSite('a', 'a')).toBe(true)
    expect(sameSite('a', 'b')).toBe(false)
    expect(sameSite(undefined, undefined)).toBe(false)
    expect(sameSite('a', undefined)).toBe(false)
  })
})

describe('SiteElection', () => {
  it('gives each chunk to exactly one member of those that know each other', () => {
    for (let i = 0; i < 64; i++) {
      const acting = MEMBERS.filter((m) => election(m).outsideAt(i, 0) === 0)
      expect(acting).toEqual([owners(i)[0]])
    }
  })

  it('spreads the chunks over the members', () => {
    const counts = new Map<string, number>()
    for (let i = 0; i < 400; i++) counts.set(owners(i)[0]!, (counts.get(owners(i)[0]!) ?? 0) + 1)
    for (const m of MEMBERS) expect(counts.get(m)).toBeGreaterThan(60)
  })

  it('a node that knows no member fetches everything itself', () => {
    const e = new SiteElection({ self: 'n1', blob: BLOB, takeoverMs: 1000 })
    expect(e.outsideAt(3, 5)).toBe(5)
  })

  it('passes a gone owner over at once', () => {
    const i = 0
    const [owner, next] = owners(i)
    const e = election(next!)
    expect(e.outsideAt(i, 0)).toBeGreaterThan(0)
    e.leave(owner!)
    expect(e.outsideAt(i, 0)).toBe(0)
    // It answers again: the duty is its own again.
    e.join(owner!, 1)
    expect(e.outsideAt(i, 1)).toBeGreaterThan(1)
  })

  it('hands the chunk to the next after the owner brought nothing in for the takeover time', () => {
    const i = 1
    const [, next, third] = owners(i)
    const e = election(next!, 1000)
    const wake = e.outsideAt(i, 0)
    expect(wake).toBe(1000)
    expect(e.outsideAt(i, 999)).toBe(1000)
    expect(e.outsideAt(i, 1000)).toBe(1000)
    // The third waits one takeover more (asked again when the duty moves, then at its turn).
    const t = election(third!, 1000)
    expect(t.outsideAt(i, 0)).toBe(1000)
    expect(t.outsideAt(i, 1500)).toBe(2000)
    expect(t.outsideAt(i, 2000)).toBe(2000)
  })

  it('does not take over from an owner that keeps bringing chunks in', () => {
    const i = 2
    const [owner, next] = owners(i)
    const e = election(next!, 1000)
    e.outsideAt(i, 0)
    for (let t = 500; t <= 3000; t += 500) {
      e.progress(owner!, t)
      expect(e.outsideAt(i, t)).toBeGreaterThan(t)
    }
    expect(e.outsideAt(i, 4000)).toBe(4000)
  })

  it('sends one member at a time to the origin, the next one takeover later', () => {
    const order = rendezvousOrder(MEMBERS, BLOB)
    const allowed = (overdueMs: number) => MEMBERS.filter((m) => election(m).mayFallBack(overdueMs, overdueMs))
    expect(allowed(1)).toEqual([order[0]])
    expect(allowed(999)).toEqual([order[0]])
    expect(allowed(1000)).toEqual([order[1]])
    const alone = new SiteElection({ self: 'n9', blob: BLOB, takeoverMs: 1000 })
    expect(alone.mayFallBack(1, 1)).toBe(true)
  })
})
