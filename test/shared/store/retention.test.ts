import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type Digest, digestOf } from '../../../shared/oci/index.ts'
import { type ContentStore, MemoryContentStore, openFsStore, Retention } from '../../../shared/store/index.ts'

const KIB = 1024
let dirs: string[] = []
afterEach(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
  dirs = []
})

async function put(store: ContentStore, seed: number): Promise<Digest> {
  const bytes = new Uint8Array(10 * KIB).fill(seed)
  const digest = digestOf(bytes)
  const p = await store.openPartial(digest, { size: bytes.byteLength, chunkSize: 4 * KIB })
  await p.append(bytes)
  await p.commit()
  return digest
}

async function has(store: ContentStore, d: Digest): Promise<boolean> {
  return (await store.stat(d)) !== undefined
}

/** A clock and a timer the test moves by hand: expiry happens when the test says time has passed. */
function fakeTime() {
  let now = 1_000_000
  const timers: { at: number; fn: () => void; live: boolean }[] = []
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      const t = { at: now + ms, fn, live: true }
      timers.push(t)
      return { cancel: () => (t.live = false) }
    },
    advance(ms: number) {
      now += ms
      for (const t of timers.splice(0)) {
        if (!t.live) continue
        if (t.at <= now) t.fn()
        else timers.push(t)
      }
    },
  }
}

describe('retention of preheated blobs', () => {
  it('keeps them past LRU pressure for the TTL, then lets them go as ordinary LRU content', async () => {
    const time = fakeTime()
    // Room for three 10 KiB blobs.
    const store = new MemoryContentStore({ maxBytes: 30 * KIB, now: time.now })
    const retention = new Retention({ store, ttlMs: 60_000, now: time.now, setTimer: time.setTimer })
    const pre = await put(store, 1)
    retention.keep(pre)
    const a = await put(store, 2)
    const b = await put(store, 3)
    // The preheated blob is the least recently used, but held: the next oldest goes instead.
    const c = await put(store, 4)
    expect(await has(store, pre)).toBe(true)
    expect(await has(store, a)).toBe(false)

    // Preheated again half-way: the hold is extended, not shortened.
    time.advance(30_000)
    retention.keep(pre)
    time.advance(59_000)
    expect(retention.held().map((h) => h.digest)).toEqual([pre])
    await put(store, 5)
    expect(await has(store, pre)).toBe(true)
    expect(await has(store, b)).toBe(false)

    // Expired: still there (nothing needs the room) but evictable like any other, oldest first.
    time.advance(1_001)
    expect(retention.held()).toEqual([])
    expect(await has(store, pre)).toBe(true)
    await put(store, 6)
    expect(await has(store, pre)).toBe(false)
    expect(await has(store, c)).toBe(true)
  })

  it('never evicts a blob while it is being served, held or not', async () => {
    const store = new MemoryContentStore({ maxBytes: 20 * KIB })
    const served = await put(store, 1)
    const other = await put(store, 2)
    const reading = await store.read(served)
    expect(reading).toBeDefined()
    await put(store, 3)
    expect(await has(store, served)).toBe(true)
    expect(await has(store, other)).toBe(false)
    reading!.stream.destroy()
    await new Promise((resolve) => reading!.stream.once('close', resolve))
    await put(store, 4)
    expect(await has(store, served)).toBe(false)
  })

  it('with a TTL of 0 holds nothing', async () => {
    const store = new MemoryContentStore({ maxBytes: 10 * KIB })
    const retention = new Retention({ store, ttlMs: 0 })
    const d = await put(store, 1)
    retention.keep(d)
    expect(retention.held()).toEqual([])
    await put(store, 2)
    expect(await has(store, d)).toBe(false)
  })

  it('survives a restart: unexpired holds come back, expired ones and vanished blobs do not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-retention-'))
    dirs.push(dir)
    const time = fakeTime()
    const fs1 = await openFsStore({ dir, maxBytes: 30 * KIB, now: time.now })
    const r1 = new Retention({ store: fs1.blobs, ttlMs: 60_000, dataDir: dir, now: time.now, setTimer: time.setTimer })
    const early = await put(fs1.blobs, 1)
    r1.keep(early)
    time.advance(50_000)
    const late = await put(fs1.blobs, 2)
    r1.keep(late)
    const gone = digestOf(new Uint8Array([9]))
    r1.keep(gone)
    await r1.stop()
    await fs1.stop()
    expect(Object.keys(JSON.parse(await readFile(join(dir, 'preheat-retention.json'), 'utf8')) as object)).toHaveLength(
      3,
    )

    time.advance(20_000)
    const fs2 = await openFsStore({ dir, maxBytes: 30 * KIB, now: time.now })
    const r2 = new Retention({ store: fs2.blobs, ttlMs: 60_000, dataDir: dir, now: time.now, setTimer: time.setTimer })
    await r2.load()
    expect(r2.held().map((h) => h.digest)).toEqual([late])
    await r2.stop()
    await fs2.stop()
  })
})
