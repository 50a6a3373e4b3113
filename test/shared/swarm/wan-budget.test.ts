import { describe, expect, it } from 'vitest'
import { bothBuckets, TokenBucket } from '../../../shared/rate/index.ts'
import { MAX_KNOWN_PEER_SITES, WanBudget, wanBudgetFor } from '../../../shared/swarm/wan-budget.ts'

const frozen = () => 0
const bucket = (bytesPerSecond: number) => new TokenBucket({ bytesPerSecond, burstBytes: 10_000, now: frozen })

function budget() {
  const b = {
    upload: bucket(1000),
    wanUpload: bucket(100),
    download: bucket(2000),
    wanDownload: bucket(200),
    origin: bucket(500),
  }
  return { b, budget: new WanBudget({ site: 'store-1', ...b }) }
}

describe('bothBuckets', () => {
  it('takes every byte from both limits', async () => {
    const a = bucket(1000)
    const b = bucket(100)
    await bothBuckets(a, b)!.take(300)
    expect(a.available).toBe(10_000 - 300)
    expect(b.available).toBe(10_000 - 300)
  })

  it('is the one limit set when the other is absent or unlimited', () => {
    const a = bucket(1000)
    expect(bothBuckets(a, undefined)).toBe(a)
    expect(bothBuckets(new TokenBucket({ bytesPerSecond: 0 }), a)).toBe(a)
    expect(bothBuckets(undefined, undefined)).toBeUndefined()
  })
})

describe('WanBudget', () => {
  it('a byte to a peer of another site counts against --upload-rate and --wan-upload-rate', async () => {
    const { b, budget: w } = budget()
    w.learn('far', 'store-2')
    await w.uploadTo('far')!.take(400)
    expect(b.upload.available).toBe(10_000 - 400)
    expect(b.wanUpload.available).toBe(10_000 - 400)
  })

  it('a byte to a same-site peer counts against --upload-rate only', async () => {
    const { b, budget: w } = budget()
    w.learn('near', 'store-1')
    await w.uploadTo('near')!.take(400)
    expect(b.upload.available).toBe(10_000 - 400)
    expect(b.wanUpload.available).toBe(10_000)
  })

  it('bytes from other sites, from peers that name no site and from seeders in the core count against the WAN download cap', async () => {
    const { b, budget: w } = budget()
    w.learn('old-agent', undefined)
    w.learn('seeder', undefined)
    w.learn('near', 'store-1')
    for (const p of ['old-agent', 'seeder', 'never-heard-of']) await w.downloadFrom(p)!.take(100)
    await w.downloadFrom('near')!.take(100)
    expect(b.download.available).toBe(10_000 - 400)
    expect(b.wanDownload.available).toBe(10_000 - 300)
  })

  it('origin bytes count against --origin-rate and --wan-download-rate', async () => {
    const { b, budget: w } = budget()
    await w.fromOrigin()!.take(250)
    expect(b.origin.available).toBe(10_000 - 250)
    expect(b.wanDownload.available).toBe(10_000 - 250)
    expect(b.download.available).toBe(10_000)
  })

  it('a peer that moves site is judged by its latest claim, and the book is bounded', async () => {
    const { b, budget: w } = budget()
    w.learn('p', 'store-1')
    w.learn('p', 'store-9')
    await w.uploadTo('p')!.take(10)
    expect(b.wanUpload.available).toBe(10_000 - 10)
    for (let i = 0; i <= MAX_KNOWN_PEER_SITES; i++) w.learn(`x${i}`, 'store-1')
    // The oldest entry fell out: x0 counts as outside again.
    expect(w.outside('x0')).toBe(true)
    expect(w.outside(`x${MAX_KNOWN_PEER_SITES}`)).toBe(false)
  })

  it('without WAN caps the limits are the node’s own, as before sites', () => {
    const w = wanBudgetFor({ uploadRate: 1000, wanUploadRate: 0, downloadRate: 0, wanDownloadRate: 0, originRate: 0 })
    expect(w.uploadTo('anyone')).toBe(w.upload)
    expect(w.downloadFrom('anyone')).toBeUndefined()
    expect(w.fromOrigin()).toBeUndefined()
  })
})
