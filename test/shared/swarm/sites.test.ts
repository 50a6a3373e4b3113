import { describe, expect, it } from 'vitest'
import { rendezvousOrder } from '../../../shared/swarm/election.ts'
import { chunkKey, sameSite, SITE_ASKER_MS, SITE_SEEDER_BUSY_MS, SiteElection } from '../../../shared/swarm/sites.ts'

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

  it('counts a same-site peer that asked for the blob as a candidate before it is tracked', () => {
    // The rollout's first second: n1 and n2 started early and know only each other; n3 and n4 started later, were
    // told of the early ones by the seeder and asked them. Without the asks, for every chunk n3 or n4 wins over all
    // four, n1 or n2 also wins over the two it knows: two members fetch it from outside.
    const early = (self: string) => {
      const e = new SiteElection({ self, blob: BLOB, takeoverMs: 1000 })
      for (const m of ['n1', 'n2']) e.join(m, 0)
      return e
    }
    const late = MEMBERS.map((m) => (m === 'n1' || m === 'n2' ? early(m) : election(m)))
    const twice = (elections: SiteElection[]) => {
      let n = 0
      for (let i = 0; i < 64; i++) if (elections.filter((e) => e.outsideAt(i, 0) === 0).length > 1) n++
      return n
    }
    expect(twice(late)).toBeGreaterThan(0)
    for (const e of late.slice(0, 2)) {
      e.heard('n3', 0)
      e.heard('n4', 0)
    }
    expect(twice(late)).toBe(0)
    for (let i = 0; i < 64; i++) {
      expect(late.filter((e) => e.outsideAt(i, 0) === 0).length).toBe(1)
    }
  })

  it('counts an asker it never reaches for a while only, one it reaches for good, and never itself', () => {
    const i = [...Array(64).keys()].find((c) => rendezvousOrder(['n1', 'n2'], chunkKey(BLOB, c))[0] === 'n2')!
    const e = new SiteElection({ self: 'n1', blob: BLOB, takeoverMs: 60_000 })
    e.heard('n1', 0)
    expect(e.outsideAt(i, 5000)).toBe(5000)
    e.heard('n2', 5000)
    expect(e.outsideAt(i, 5000)).toBeGreaterThan(5000)
    // Asking again does not extend it: n2 never answered this node's own `have` (unreachable, or not followed).
    e.heard('n2', 5000 + SITE_ASKER_MS)
    expect(e.outsideAt(i, 5000 + SITE_ASKER_MS)).toBeGreaterThan(5000 + SITE_ASKER_MS)
    const later = 5001 + SITE_ASKER_MS
    expect(e.outsideAt(i, later)).toBe(later)
    e.heard('n2', later + 1)
    expect(e.outsideAt(i, later + 1)).toBe(later + 1)
    // Once it answers it is a member: it keeps its chunks however long after.
    const f = new SiteElection({ self: 'n1', blob: BLOB, takeoverMs: 60_000 })
    f.heard('n2', 0)
    f.join('n2', 1000)
    expect(f.outsideAt(i, 2 * SITE_ASKER_MS)).toBeGreaterThan(2 * SITE_ASKER_MS)
  })

  it('keeps a chunk a seeder turned it away for from other sites while a member may not know it yet', () => {
    // n1 knows n2 and n3; n3 has asked n1 (it counts n1), n2 has not: n2 may have won chunk 0 over the members it
    // knew and taken it from the seeder, which then answers n1 `busy` for it.
    const e = new SiteElection({ self: 'n1', blob: BLOB, takeoverMs: 60_000 })
    e.join('n2', 0)
    e.join('n3', 0)
    e.heard('n3', 100)
    expect(e.relaysAt(0, 1000)).toBe(1000)
    e.seederBusy(0, 1000)
    // Asked again later: the hold counts from the first answer.
    e.seederBusy(0, 3000)
    expect(e.relaysAt(0, 1001)).toBe(1000 + SITE_SEEDER_BUSY_MS)
    expect(e.relaysAt(0, 1000 + SITE_SEEDER_BUSY_MS)).toBe(1000 + SITE_SEEDER_BUSY_MS)
    expect(e.relaysAt(0, 1001 + SITE_SEEDER_BUSY_MS)).toBe(1001 + SITE_SEEDER_BUSY_MS)
    // Other chunks are not held.
    expect(e.relaysAt(1, 1001)).toBe(1001)
    // The chunk reached the site: nothing to hold.
    e.seederBusy(2, 1000)
    e.arrived(2)
    expect(e.relaysAt(2, 1001)).toBe(1001)
    // n2 asks too: every member counts n1, so a seeder's `busy` is for want of a slot and relays may serve at once.
    e.seederBusy(4, 2000)
    expect(e.relaysAt(4, 2001)).toBe(2000 + SITE_SEEDER_BUSY_MS)
    e.heard('n2', 2500)
    expect(e.relaysAt(4, 2501)).toBe(2501)
    // A member that left is not waited for.
    const f = new SiteElection({ self: 'n1', blob: BLOB, takeoverMs: 60_000 })
    f.join('n2', 0)
    f.seederBusy(0, 0)
    expect(f.relaysAt(0, 1)).toBe(SITE_SEEDER_BUSY_MS)
    f.leave('n2')
    expect(f.relaysAt(0, 1)).toBe(1)
  })

  it('counts an asker heard at any clock reading (a fractional one too)', () => {
    // Times from performance.now() or a model's clock are fractional: 210.1505635359116 + 15,000 - 15,000 is not it.
    const t = 210.1505635359116
    const i = [...Array(64).keys()].find((c) => rendezvousOrder(['n1', 'n2'], chunkKey(BLOB, c))[0] === 'n2')!
    const e = new SiteElection({ self: 'n1', blob: BLOB, takeoverMs: 60_000 })
    e.heard('n2', t)
    expect(e.outsideAt(i, 541)).toBeGreaterThan(541)
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
