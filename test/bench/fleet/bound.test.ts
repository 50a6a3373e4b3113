import { describe, expect, it } from 'vitest'
import { boundSources, lowerBound, mbitToBps, scenarioBound } from '../../../bench/fleet/bound.ts'
import { SCENARIO_NAMES, type LinkRates } from '../../../bench/fleet/config.ts'

const MB = 1e6
const links: LinkRates = {
  originUp: 40,
  cacheUp: 200,
  cacheDown: 200,
  seederUp: 200,
  seederDown: 200,
  nodeUp: 100,
  nodeDown: 100,
}

describe('lowerBound', () => {
  it('is the first-copy term when the source is the thin link', () => {
    const b = lowerBound({
      imageBytes: 100 * MB,
      nodes: 16,
      firstCopyBps: 5 * MB,
      sourceBps: 5 * MB,
      nodeUpBps: 12.5 * MB,
      nodeDownBps: 12.5 * MB,
    })
    expect(b.firstCopyS).toBeCloseTo(20)
    expect(b.nodeDownloadS).toBeCloseTo(8)
    expect(b.aggregateUploadS).toBeCloseTo(1600 / 205)
    expect(b.seconds).toBeCloseTo(20)
    expect(b.limitedBy).toBe('first-copy')
  })

  it('is the node downlink when the sources are fast', () => {
    const b = lowerBound({
      imageBytes: 100 * MB,
      nodes: 4,
      firstCopyBps: 100 * MB,
      sourceBps: 100 * MB,
      nodeUpBps: 10 * MB,
      nodeDownBps: 10 * MB,
    })
    expect(b.seconds).toBeCloseTo(10)
    expect(b.limitedBy).toBe('node-download')
  })

  it('is the aggregate upload when nodes upload little and there are many', () => {
    const b = lowerBound({
      imageBytes: 100 * MB,
      nodes: 1000,
      firstCopyBps: 50 * MB,
      sourceBps: 50 * MB,
      nodeUpBps: 1 * MB,
      nodeDownBps: 100 * MB,
    })
    expect(b.aggregateUploadS).toBeCloseTo((1000 * 100) / (50 + 1000))
    expect(b.limitedBy).toBe('aggregate-upload')
    expect(b.seconds).toBe(b.aggregateUploadS)
  })

  it('rejects zero, negative and non-finite inputs', () => {
    const ok = { imageBytes: 1, nodes: 1, firstCopyBps: 1, sourceBps: 1, nodeUpBps: 1, nodeDownBps: 1 }
    expect(() => lowerBound({ ...ok, nodeUpBps: 0 })).toThrow(RangeError)
    expect(() => lowerBound({ ...ok, nodes: -1 })).toThrow(/nodes/)
    expect(() => lowerBound({ ...ok, imageBytes: Number.NaN })).toThrow(RangeError)
  })
})

describe('boundSources', () => {
  it('counts the origin as the first holder except for a preheated seeder', () => {
    expect(boundSources('direct', links)).toMatchObject({ firstCopyMbit: 40, sourceMbit: 40 })
    expect(boundSources('cache', links)).toMatchObject({ firstCopyMbit: 40, sourceMbit: 240 })
    expect(boundSources('shoal-cold', links)).toMatchObject({ firstCopyMbit: 40, sourceMbit: 240 })
    expect(boundSources('shoal-preheated', links)).toMatchObject({ firstCopyMbit: 200, sourceMbit: 200 })
  })

  it('describes every scenario', () => {
    for (const s of SCENARIO_NAMES) expect(boundSources(s, links).description).toMatch(/U_first = .*U_src = /)
  })
})

describe('scenarioBound', () => {
  it('applies the configured links: 32 MiB over a 40 mbit origin takes 6.7 s at best', () => {
    const b = scenarioBound('direct', links, 32 * 1024 * 1024, 4)
    expect(b.seconds).toBeCloseTo((32 * 1024 * 1024) / mbitToBps(40))
    expect(b.seconds).toBeCloseTo(6.71, 2)
    expect(b.sources.firstCopyMbit).toBe(40)
  })

  it('gives a preheated rollout a lower bound no higher than a cold one here', () => {
    const S = 256 * 1024 * 1024
    expect(scenarioBound('shoal-preheated', links, S, 16).seconds).toBeLessThan(
      scenarioBound('shoal-cold', links, S, 16).seconds,
    )
  })
})
