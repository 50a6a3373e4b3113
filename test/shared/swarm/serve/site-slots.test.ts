import { describe, expect, it } from 'vitest'
import {
  AGENT_WAN_UPLOADS,
  agentUploadSlots,
  SEEDER_UPLOADS_PER_SITE,
  seederUploadSlots,
  SITE_SEND_GRACE_MS,
  SiteUploadSlots,
} from '../../../../shared/swarm/serve/index.ts'

/** Receivers named `<site>/<id>` are in that site; others in none. */
const siteOf = (peer: string): string | undefined => (peer.includes('/') ? peer.split('/')[0] : undefined)
const sites = (own: string | undefined) => ({
  siteOf,
  outside: (peer: string) => own === undefined || siteOf(peer) !== own,
})

function fill(s: { tryAcquire(peer: string): (() => void) | undefined }, peers: readonly string[]) {
  return peers.map((p) => s.tryAcquire(p))
}

describe('SiteUploadSlots', () => {
  it('gives each site its own slots, so one site taking its own cannot turn another away', () => {
    const s = new SiteUploadSlots({ max: 2, poolOf: siteOf, perPool: 2, now: () => 0 })
    const a = fill(s, ['a/1', 'a/2', 'a/3'])
    expect(a.map((r) => r !== undefined)).toEqual([true, true, false])
    // Site b, and agents in no site, still get slots while site a's are all taken.
    expect(fill(s, ['b/1', 'b/2']).every((r) => r !== undefined)).toBe(true)
    expect(fill(s, ['x', 'y', 'z']).map((r) => r !== undefined)).toEqual([true, true, false])
    expect(s.used).toBe(6)
    a[0]!()
    expect(s.used).toBe(5)
    expect(s.tryAcquire('a/3')).toBeDefined()
  })

  it('caps the slots over all sites, and frees each once', () => {
    const s = new SiteUploadSlots({ max: 1, poolOf: siteOf, perPool: 2, maxPooled: 3, now: () => 0 })
    const held = fill(s, ['a/1', 'a/2', 'b/1'])
    expect(held.every((r) => r !== undefined)).toBe(true)
    expect(s.tryAcquire('c/1')).toBeUndefined()
    // The flat pool is apart from the cap over sites.
    expect(s.tryAcquire('x')).toBeDefined()
    held[0]!()
    held[0]!()
    expect(s.used).toBe(3)
    expect(s.tryAcquire('c/1')).toBeDefined()
    expect(s.tryAcquire('c/2')).toBeUndefined()
  })

  it('grants a freed slot of a site to a request of that site waiting for one', () => {
    const s = new SiteUploadSlots({ max: 1, poolOf: siteOf, perPool: 1, now: () => 0 })
    const first = s.tryAcquire('a/1')!
    expect(s.tryAcquire('a/2')).toBeUndefined()
    let granted: (() => void) | undefined
    expect(s.wait('a/2', (r) => (granted = r))).toBeDefined()
    expect(s.queued).toBe(1)
    first()
    expect(granted).toBeDefined()
    expect(s.used).toBe(1)
    granted!()
    expect(s.used).toBe(0)
  })

  it('sends each chunk once into a site: other members are turned away while it is sent and shortly after', () => {
    const clock = { t: 0 }
    const s = new SiteUploadSlots({ max: 2, poolOf: siteOf, perPool: 3, oncePerPool: true, now: () => clock.t })
    const first = s.tryAcquire('a/1', 'd#0')!
    expect(first).toBeDefined()
    // Another member of site a, for the same chunk: busy at once, and no waiting for a slot either.
    expect(s.tryAcquire('a/2', 'd#0')).toBeUndefined()
    expect(s.wait('a/2', () => {}, 'd#0')).toBeUndefined()
    // The same member again (its own retry), another chunk, another site, a receiver in no site: served.
    const retry = s.tryAcquire('a/1', 'd#0')!
    expect(retry).toBeDefined()
    expect(s.tryAcquire('a/2', 'd#1')).toBeDefined()
    expect(s.tryAcquire('b/1', 'd#0')).toBeDefined()
    expect(s.tryAcquire('x', 'd#0')).toBeDefined()
    clock.t = 10_000
    first()
    retry()
    // Sent: the member announces it over the LAN within the grace, then the others take it from there.
    clock.t += SITE_SEND_GRACE_MS - 1
    expect(s.tryAcquire('a/3', 'd#0')).toBeUndefined()
    clock.t += 1
    expect(s.tryAcquire('a/3', 'd#0')).toBeDefined()
  })

  it('serves every asker when not asked to send once per site', () => {
    const s = new SiteUploadSlots({ max: 2, poolOf: siteOf, perPool: 3, now: () => 0 })
    expect(s.tryAcquire('a/1', 'd#0')).toBeDefined()
    expect(s.tryAcquire('a/2', 'd#0')).toBeDefined()
  })

  it('a seeder gives agents in no site its flat count, and each site SEEDER_UPLOADS_PER_SITE more', () => {
    const s = seederUploadSlots(2, sites(undefined))
    expect(fill(s, ['x', 'y', 'z']).filter((r) => r !== undefined)).toHaveLength(2)
    const a = fill(
      s,
      Array.from({ length: SEEDER_UPLOADS_PER_SITE + 1 }, (_, i) => `a/${i}`),
    )
    expect(a.filter((r) => r !== undefined)).toHaveLength(SEEDER_UPLOADS_PER_SITE)
    expect(s.tryAcquire('b/1')).toBeDefined()
    // And sends a chunk once into a site.
    expect(s.tryAcquire('b/2', 'd#5')).toBeDefined()
    expect(s.tryAcquire('b/3', 'd#5')).toBeUndefined()
  })

  it('an agent in a site serves peers outside it AGENT_WAN_UPLOADS at once, its own site its full count', () => {
    const s = agentUploadSlots(3, 'a', sites('a'))
    const outside = fill(
      s,
      Array.from({ length: AGENT_WAN_UPLOADS + 2 }, (_, i) => (i % 2 === 0 ? `b/${i}` : `x${i}`)),
    )
    expect(outside.filter((r) => r !== undefined)).toHaveLength(AGENT_WAN_UPLOADS)
    expect(fill(s, ['a/1', 'a/2', 'a/3']).every((r) => r !== undefined)).toBe(true)
    expect(s.tryAcquire('a/4')).toBeUndefined()
  })

  it('an agent in no site keeps one flat count for every peer', () => {
    const s = agentUploadSlots(3, undefined, sites(undefined))
    expect(fill(s, ['b/1', 'b/2', 'x', 'y']).map((r) => r !== undefined)).toEqual([true, true, true, false])
  })
})
