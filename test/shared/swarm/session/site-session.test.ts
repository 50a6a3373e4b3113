import { describe, expect, it } from 'vitest'
import { rendezvousOrder } from '../../../../shared/swarm/election.ts'
import { TICK_MS } from '../../../../shared/swarm/session/index.ts'
import { SessionError } from '../../../../shared/swarm/session/index.ts'
import { all, world } from './fakes.ts'

const BLOB = 'sha256:' + 'cd'.repeat(32)
const STALL_MS = 3000

describe('DownloadSession in an edge site', () => {
  it('takes what a same-site peer holds from it, the rest from outside only on its own turn', () => {
    const w = world({
      chunkCount: 8,
      peers: [
        { id: 'far', kind: 'peer', have: all(8), behaviour: { kind: 'honest' }, site: 'core' },
        { id: 'near', kind: 'peer', have: [0, 1, 2, 3], behaviour: { kind: 'honest' }, site: 'store-1' },
      ],
      init: { site: { name: 'store-1', self: 'me', blob: BLOB } },
    })
    w.clock.run(1000, () => w.end !== undefined)
    const far = w.fetches.filter((f) => f.peer === 'far').map((f) => f.index)
    const near = w.fetches.filter((f) => f.peer === 'near').map((f) => f.index)
    expect([...new Set(near)].sort()).toEqual([0, 1, 2, 3])
    expect(far.every((i) => i >= 4)).toBe(true)
    // Chunks 4..7 are held by nobody in the site: 'me' fetches those whose election it wins, and waits for the rest.
    const mine = [4, 5, 6, 7].filter((i) => rendezvousOrder(['me', 'near'], `${BLOB}#${i}`)[0] === 'me')
    expect([...new Set(far)].sort()).toEqual(mine)
    // Each request outside the site is reported with the candidates it was elected over; none within it.
    expect(w.outside.map((o) => o.index).sort()).toEqual([...far].sort())
    for (const o of w.outside) {
      expect(o.peer).toBe('far')
      expect(o.candidates).toEqual(rendezvousOrder(['me', 'near'], `${BLOB}#${o.index}`))
    }
  })

  it('takes over a chunk from a member that brought nothing in for the takeover time', () => {
    const w = world({
      chunkCount: 8,
      peers: [
        { id: 'far', kind: 'peer', have: all(8), behaviour: { kind: 'honest' } },
        { id: 'near', kind: 'peer', have: [], behaviour: { kind: 'honest' }, site: 'store-1' },
      ],
      init: { stallTimeoutMs: 60_000, site: { name: 'store-1', self: 'me', blob: BLOB, takeoverMs: 2000 } },
    })
    w.clock.run(60_000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    const theirs = [...Array(8).keys()].filter((i) => rendezvousOrder(['me', 'near'], `${BLOB}#${i}`)[0] === 'near')
    expect(theirs.length).toBeGreaterThan(0)
    for (const i of theirs) {
      const f = w.fetches.find((x) => x.index === i)!
      expect(f.peer).toBe('far')
      expect(f.at).toBeGreaterThanOrEqual(2000)
      expect(f.at).toBeLessThan(2000 + 1000 + TICK_MS)
    }
  })

  it('on a WAN stall, does not leave for the origin while another member has that turn', () => {
    // Outside is silent (the WAN is down); two members of the site are alive and hold nothing.
    const members = ['m1', 'm2', 'me']
    const order = rendezvousOrder(members, BLOB)
    const run = (self: string) => {
      const w = world({
        chunkCount: 4,
        peers: [
          { id: 'far', kind: 'peer', have: all(4), behaviour: { kind: 'silent' } },
          ...members
            .filter((m) => m !== self)
            .map((id) => ({ id, kind: 'peer' as const, have: [], behaviour: { kind: 'honest' as const }, site: 's' })),
        ],
        init: { stallTimeoutMs: STALL_MS, site: { name: 's', self, blob: BLOB } },
      })
      w.clock.run(60_000, () => w.end !== undefined)
      return w
    }
    for (const self of members) {
      const w = run(self)
      const r = order.indexOf(self)
      expect(w.end).toBeInstanceOf(SessionError)
      expect((w.end as SessionError).code).toBe('SESSION_STALLED')
      // The first in order leaves after one stall timeout, the next one stall timeout later, and so on.
      expect(w.endedAt).toBeGreaterThanOrEqual(STALL_MS * (r + 1))
      expect(w.endedAt).toBeLessThanOrEqual(STALL_MS * (r + 1) + 2 * TICK_MS)
    }
  })

  it('leaves the chunks a same-site asker wins to it, before it is tracked', () => {
    const run = (askerSite: string) => {
      const w = world({
        chunkCount: 8,
        peers: [{ id: 'far', kind: 'peer', have: all(8), behaviour: { kind: 'honest' } }],
        init: { stallTimeoutMs: 60_000, site: { name: 'store-1', self: 'me', blob: BLOB, takeoverMs: 10_000 } },
      })
      // 'near' asked this node for the blob's `have`; this node has not reached it (not a holder it follows).
      w.session.heardFrom('near', askerSite)
      w.clock.run(5000, () => w.end !== undefined)
      return [...new Set(w.fetches.filter((f) => f.peer === 'far').map((f) => f.index))].sort()
    }
    const mine = [...Array(8).keys()].filter((i) => rendezvousOrder(['me', 'near'], `${BLOB}#${i}`)[0] === 'me')
    expect(mine.length).toBeGreaterThan(0)
    expect(mine.length).toBeLessThan(8)
    expect(run('store-1')).toEqual(mine)
    // An asker of another site is nobody's member: this node fetches everything once its join window is over.
    expect(run('store-2')).toEqual([...Array(8).keys()])
  })

  it('without a site, a peer claiming one is just a peer', () => {
    const w = world({
      chunkCount: 4,
      peers: [
        { id: 'far', kind: 'peer', have: all(4), behaviour: { kind: 'honest' } },
        { id: 'near', kind: 'peer', have: [], behaviour: { kind: 'honest' }, site: 'store-1' },
      ],
    })
    w.clock.run(1000, () => w.end !== undefined)
    expect(w.end).toBe('done')
    expect(w.fetches.filter((f) => f.peer === 'far').length).toBe(4)
  })
})
