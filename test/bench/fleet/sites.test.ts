import { describe, expect, it } from 'vitest'
import { BenchUsageError } from '../../../bench/fleet/errors.ts'
import { parseSiteShape, parseWanCut, siteBound, siteNodeCount, siteOfNode } from '../../../bench/fleet/sites.ts'

describe('parseSiteShape', () => {
  it('is undefined for a flat fleet', () => {
    expect(parseSiteShape({}, true)).toBeUndefined()
    expect(parseSiteShape({}, false)).toBeUndefined()
  })

  it('reads the three flags', () => {
    const shape = parseSiteShape({ sites: '2', 'site-nodes': '3', wan: '24' }, false)
    expect(shape).toEqual({ sites: 2, siteNodes: 3, wanMbit: 24 })
    expect(siteNodeCount(shape!)).toBe(6)
    expect([0, 1, 2, 3, 5].map((i) => siteOfNode(shape!, i))).toEqual([
      'site-0',
      'site-0',
      'site-0',
      'site-1',
      'site-1',
    ])
  })

  it('refuses --nodes beside --sites, and half a site shape', () => {
    expect(() => parseSiteShape({ sites: '2', 'site-nodes': '3', wan: '24' }, true)).toThrow(/--nodes/)
    expect(() => parseSiteShape({ sites: '2', wan: '24' }, false)).toThrow(/--site-nodes/)
    expect(() => parseSiteShape({ sites: '2', 'site-nodes': '3' }, false)).toThrow(/--wan/)
    expect(() => parseSiteShape({ 'site-nodes': '3' }, false)).toThrow(/needs --sites/)
    expect(() => parseSiteShape({ wan: '24' }, false)).toThrow(/needs --sites/)
  })

  it('refuses values that are not positive', () => {
    for (const bad of [{ sites: '0' }, { sites: '1.5' }, { 'site-nodes': '-1' }, { wan: 'fast' }, { wan: '0' }]) {
      expect(() => parseSiteShape({ sites: '2', 'site-nodes': '3', wan: '24', ...bad }, false)).toThrow(BenchUsageError)
    }
  })
})

describe('siteBound', () => {
  const S = 32 * 1024 * 1024
  const wanBps = 24e6 / 8

  it('is S / WAN down when the core is wide', () => {
    const b = siteBound({ imageBytes: S, sites: 2, wanDownBps: wanBps, wanUpBps: wanBps, coreUpBps: 400e6 / 8 })
    expect(b.limitedBy).toBe('wan-download')
    expect(b.seconds).toBeCloseTo(S / wanBps, 9)
    expect(b.seconds).toBeCloseTo(11.18, 2)
  })

  it('never binds on upload with symmetric WAN links, even with a thin core', () => {
    const b = siteBound({ imageBytes: S, sites: 20, wanDownBps: wanBps, wanUpBps: wanBps, coreUpBps: wanBps / 2 })
    expect(b.limitedBy).toBe('wan-download')
    expect(b.coreAndWanUploadS).toBeLessThan(b.wanDownloadS)
  })

  it('is K·S over the core and the sites uplinks when the uplinks are thin', () => {
    const up = wanBps / 10
    const b = siteBound({ imageBytes: S, sites: 20, wanDownBps: wanBps, wanUpBps: up, coreUpBps: wanBps })
    expect(b.limitedBy).toBe('core-and-wan-upload')
    expect(b.seconds).toBeCloseTo((20 * S) / (wanBps + 20 * up), 9)
    expect(b.seconds).toBeGreaterThan(S / wanBps)
  })

  it('rejects a rate that is not positive', () => {
    expect(() => siteBound({ imageBytes: S, sites: 2, wanDownBps: 0, wanUpBps: 1, coreUpBps: 1 })).toThrow(RangeError)
  })
})

describe('parseWanCut', () => {
  const shape = { sites: 2, siteNodes: 3, wanMbit: 24 }

  it('reads SITE:AT_S:FOR_S for a site of the run', () => {
    expect(parseWanCut(undefined, shape)).toBeUndefined()
    expect(parseWanCut('site-1:5:20', shape)).toEqual({ site: 'site-1', atS: 5, forS: 20 })
    expect(parseWanCut('site-0:0:2.5', shape)).toEqual({ site: 'site-0', atS: 0, forS: 2.5 })
  })

  it('refuses a cut without sites, of a site not in the run, or with bad times', () => {
    expect(() => parseWanCut('site-0:5:20', undefined)).toThrow(/needs --sites/)
    expect(() => parseWanCut('site-2:5:20', shape)).toThrow(/no site-2/)
    for (const bad of ['core:5:20', 'site-0:5', 'site-0:x:20', 'site-0:-1:20', 'site-0:5:0', 'site-0:5:20:1']) {
      expect(() => parseWanCut(bad, shape)).toThrow(BenchUsageError)
    }
  })
})
