import type { PeerId } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { Downloads } from '../../agent/blobs/download.ts'
import { Prefetcher, PrefetchRefusedError } from '../../agent/prefetch.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { type ContentStore, Retention } from '../../shared/store/index.ts'
import type { RequestContext } from '../../shared/swarm/protocol/index.ts'

const SEEDER = 'seeder-1'
const D = `sha256:${'d'.repeat(64)}` as Digest
const ctx = (peer: string) => ({ peer: { toString: () => peer } as unknown as PeerId }) as RequestContext

/** A store that only answers stat and pin (all the prefetcher and its holds use), and a fill to drive by hand. */
function rig(opts: { holds: boolean; ttlMs?: number; complete?: Digest[] }) {
  const complete = new Set<Digest>(opts.complete ?? [])
  const pinned = new Map<Digest, number>()
  const store = {
    stat: async (d: Digest) => (complete.has(d) ? { digest: d, size: 1 } : undefined),
    pin: (d: Digest) => {
      pinned.set(d, (pinned.get(d) ?? 0) + 1)
      return () => pinned.set(d, (pinned.get(d) ?? 1) - 1)
    },
  } as unknown as ContentStore
  const fills: { digest: Digest; finish: () => void; fail: () => void }[] = []
  const holds = new Retention({ store, ttlMs: opts.ttlMs ?? 3_600_000 })
  const downloads = new Downloads()
  const prefetcher = new Prefetcher({
    trusted: new Set([SEEDER]),
    store,
    downloads,
    fill: (_dl, req) =>
      new Promise<void>((resolve, reject) => {
        fills.push({
          digest: req.digest,
          finish: () => {
            complete.add(req.digest)
            resolve()
          },
          fail: () => reject(new Error('origin down')),
        })
      }),
    upstreamFor: () => ({ registry: 'r.io' }) as never,
    signal: new AbortController().signal,
    log: { debug: () => {}, info: () => {} },
    ...(opts.holds ? { holds } : {}),
  })
  return { prefetcher, holds, pinned, fills, downloads }
}

describe("an agent asked to hold a site's copy", () => {
  it('downloads the blob, then pins it for its --preheat-ttl', async () => {
    const r = rig({ holds: true })
    await r.prefetcher.accept(D, 'r.io', 'a', ctx(SEEDER), { hold: true })
    await expect.poll(() => r.fills.length).toBe(1)
    expect(r.holds.held()).toEqual([])
    r.fills[0]!.finish()
    await expect.poll(() => r.holds.held().map((h) => h.digest)).toEqual([D])
    expect(r.pinned.get(D)).toBe(1)
    expect(r.holds.held()[0]!.until - Date.now()).toBeGreaterThan(3_500_000)
  })

  it('pins at once a blob it already holds', async () => {
    const r = rig({ holds: true, complete: [D] })
    await r.prefetcher.accept(D, 'r.io', 'a', ctx(SEEDER), { hold: true })
    expect(r.holds.held().map((h) => h.digest)).toEqual([D])
    expect(r.fills).toEqual([])
  })

  it('pins a blob a client is pulling once that download completes', async () => {
    const r = rig({ holds: true })
    let finish!: () => void
    r.downloads.join(D, {} as ContentStore, () => new Promise<void>((resolve) => (finish = resolve)))
    await r.prefetcher.accept(D, 'r.io', 'a', ctx(SEEDER), { hold: true })
    expect(r.holds.held()).toEqual([])
    finish()
    await expect.poll(() => r.holds.held().map((h) => h.digest)).toEqual([D])
  })

  it('pins nothing when the download fails, nor for a plain prefetch', async () => {
    const r = rig({ holds: true })
    await r.prefetcher.accept(D, 'r.io', 'a', ctx(SEEDER), { hold: true })
    await expect.poll(() => r.fills.length).toBe(1)
    r.fills[0]!.fail()
    await expect.poll(() => r.prefetcher.running).toBe(0)
    expect(r.holds.held()).toEqual([])
    const plain = rig({ holds: true })
    await plain.prefetcher.accept(D, 'r.io', 'a', ctx(SEEDER))
    await expect.poll(() => plain.fills.length).toBe(1)
    plain.fills[0]!.finish()
    await expect.poll(() => plain.prefetcher.running).toBe(0)
    expect(plain.holds.held()).toEqual([])
  })

  it('refuses to hold without a --preheat-ttl, and refuses anyone but a trusted seeder', async () => {
    const r = rig({ holds: false })
    await expect(r.prefetcher.accept(D, 'r.io', 'a', ctx(SEEDER), { hold: true })).rejects.toThrow(PrefetchRefusedError)
    expect(r.fills).toEqual([])
    const t = rig({ holds: true })
    await expect(t.prefetcher.accept(D, 'r.io', 'a', ctx('stranger'), { hold: true })).rejects.toThrow(/trusted seeder/)
  })
})
