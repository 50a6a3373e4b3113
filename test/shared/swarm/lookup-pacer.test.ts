import { describe, expect, it } from 'vitest'
import { FIRST_LOOKUP_BACKOFF_MS, LookupPacer, MAX_LOOKUP_INTERVAL_MS } from '../../../shared/swarm/lookup-pacer.ts'
import { SITE_LOOKUP_MS } from '../../../shared/swarm/sites.ts'

/** The seconds (of `seconds`, one rediscovery each) at which a lookup starts; each finds `fresh(t)` new holders. */
function starts(pacer: LookupPacer, seconds: number, fresh: (t: number) => number = () => 0): number[] {
  const at: number[] = []
  for (let t = 0; t < seconds; t++) {
    if (!pacer.start(t * 1000)) continue
    at.push(t)
    pacer.finished(fresh(t), t * 1000 + 50)
  }
  return at
}

describe('LookupPacer', () => {
  it('in no site: every second while lookups bring holders, then 2 s and 4 s after each lookup ends', () => {
    expect([FIRST_LOOKUP_BACKOFF_MS, MAX_LOOKUP_INTERVAL_MS]).toEqual([2000, 4000])
    expect(starts(new LookupPacer({ inSite: false, followsSeeder: true }), 20, (t) => (t < 3 ? 1 : 0))).toEqual([
      0, 1, 2, 3, 6, 11, 16,
    ])
  })

  it('in a site following a seeder: SITE_LOOKUP_MS apart, whatever the lookups bring', () => {
    const step = SITE_LOOKUP_MS / 1000
    expect(starts(new LookupPacer({ inSite: true, followsSeeder: true }), 3 * step, () => 1)).toEqual([
      0,
      step,
      2 * step,
    ])
  })

  it('in a site with no seeder: at every rediscovery', () => {
    expect(starts(new LookupPacer({ inSite: true, followsSeeder: false }), 5)).toEqual([0, 1, 2, 3, 4])
  })

  it('starts no second lookup while one runs, up to the cap', () => {
    const pacer = new LookupPacer({ inSite: false, followsSeeder: false })
    expect(pacer.start(0)).toBe(true)
    expect(pacer.start(1000)).toBe(false)
    expect(pacer.start(MAX_LOOKUP_INTERVAL_MS)).toBe(true)
  })

  it('a lost holder brings the next lookup back at once, even one ending after the loss; the site rule keeps its spacing', () => {
    const backoff = new LookupPacer({ inSite: false, followsSeeder: true })
    expect(backoff.start(0)).toBe(true)
    backoff.lost()
    backoff.finished(0, 100)
    expect(backoff.start(1000)).toBe(true)
    const site = new LookupPacer({ inSite: true, followsSeeder: true })
    expect(site.start(0)).toBe(true)
    site.lost()
    expect(site.start(1000)).toBe(false)
  })
})
