import { mkdtemp, readFile, readdir, readlink, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WorkerHashPool } from '../../../shared/hashing/index.ts'
import { type Digest, digestHex } from '../../../shared/oci/digest.ts'
import { type FsStore, type FsStoreOptions, openFsStore } from '../../../shared/store/index.ts'
import { contentStoreConformance } from './content-store.conformance.ts'
import { blobOf, chunkOf, collect, expectBytes, fakeClock, putBlob } from './helpers.ts'

const dirs: string[] = []
const tempDir = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-store-'))
  dirs.push(dir)
  return dir
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
})

contentStoreConformance('FsContentStore', async (opts) => openFsStore({ ...opts, dir: await tempDir() }))

// The same contract with the whole-blob hash on worker threads (as the agent runs it), every write waiting for the
// hash to catch up (no backlog allowed).
const hashing = new WorkerHashPool({ threads: 2, backlogBytes: 0 })
afterAll(() => hashing.stop())
contentStoreConformance('FsContentStore, hashing on worker threads', async (opts) =>
  openFsStore({ ...opts, dir: await tempDir(), hashing }),
)

describe('FsContentStore on disk', () => {
  let dir: string
  let stores: FsStore[] = []
  const reopen = async (opts: Partial<FsStoreOptions> = {}): Promise<FsStore> => {
    const s = await openFsStore({ now: fakeClock(), ...opts, dir })
    stores.push(s)
    return s
  }
  beforeEach(async () => {
    dir = await tempDir()
  })
  afterEach(async () => {
    await Promise.all(stores.map((s) => s.stop()))
    stores = []
  })
  const blobPath = (d: Digest): string => join(dir, 'blobs', 'sha256', digestHex(d))
  const partialPath = (d: Digest): string => join(dir, 'partial', `sha256-${digestHex(d)}`)
  const exists = (path: string): Promise<boolean> =>
    stat(path).then(
      () => true,
      () => false,
    )

  /** This process's open file descriptors on `path` (Linux). */
  const openFds = async (path: string): Promise<number> => {
    let n = 0
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(join('/proc/self/fd', fd)).catch(() => '')
      if (target === path || target === `${path} (deleted)`) n++
    }
    return n
  }

  it('readRange keeps one handle per blob across reads and closes it when the blob is deleted', async () => {
    const s = await reopen()
    const blob = blobOf(8000, 21)
    await putBlob(s.blobs, blob)
    const path = blobPath(blob.digest)
    expect(await openFds(path)).toBe(0)
    for (let i = 0; i < 8; i++) {
      expectBytes(
        (await s.blobs.readRange(blob.digest, { start: i * 1000, end: i * 1000 + 1000 }))!,
        chunkOf(blob.bytes, i, 1000),
      )
    }
    expect(await openFds(path)).toBe(1)
    expect(await s.blobs.delete(blob.digest)).toBe(true)
    expect(await openFds(path)).toBe(0)
  })

  it('keeps partials under partial/<alg>-<hex> and complete blobs under blobs/<alg>/<hex>', async () => {
    const s = await reopen()
    const blob = blobOf(3000, 1)
    const p = await s.blobs.openPartial(blob.digest, { size: 3000, chunkSize: 1000 })
    await p.writeChunk(1, chunkOf(blob.bytes, 1, 1000))
    expect(await exists(partialPath(blob.digest))).toBe(true)
    expect(await exists(blobPath(blob.digest))).toBe(false)
    await p.writeChunk(0, chunkOf(blob.bytes, 0, 1000))
    await p.writeChunk(2, chunkOf(blob.bytes, 2, 1000))
    await p.commit()
    expect(await exists(partialPath(blob.digest))).toBe(false)
    expect((await stat(blobPath(blob.digest))).size).toBe(3000)
    expect((await stat(blobPath(blob.digest))).mode & 0o777).toBe(0o600)
  })

  it('resumes out-of-order chunk downloads after close and reopen', async () => {
    const blob = blobOf(5500, 2)
    let s = await reopen({ maxBytes: 10_000 })
    const p = await s.blobs.openPartial(blob.digest, { size: 5500, chunkSize: 1000 })
    for (const i of [4, 0, 2, 5]) await p.writeChunk(i, chunkOf(blob.bytes, i, 1000))
    await s.stop()

    s = await reopen({ maxBytes: 10_000 })
    expect(s.blobs.usage().bytes).toBe(5500)
    expect(await s.blobs.listPartials()).toEqual([
      { digest: blob.digest, size: 5500, chunkSize: 1000, prefixBytes: 1000, chunksWritten: 4, open: false },
    ])
    const q = await s.blobs.openPartial(blob.digest, { size: 5500, chunkSize: 1000 })
    expect([...q.written.indexes()]).toEqual([0, 2, 4, 5])
    expect(q.prefixBytes).toBe(1000)
    expectBytes(await q.readChunk(4), chunkOf(blob.bytes, 4, 1000))
    for (const i of [3, 1]) await q.writeChunk(i, chunkOf(blob.bytes, i, 1000))
    // The whole-blob hash covers bytes written before the restart: it reads them back from the file.
    expect((await q.commit()).digest).toBe(blob.digest)
    expectBytes(await collect((await s.blobs.read(blob.digest))!.stream), blob.bytes)
  })

  it('resumes a sequential download at its persisted prefix', async () => {
    const blob = blobOf(4000, 3)
    let s = await reopen()
    const p = await s.blobs.openPartial(blob.digest, { size: 4000, chunkSize: 1000 })
    await p.append(blob.bytes.subarray(0, 2500))
    await s.stop()
    s = await reopen()
    const q = await s.blobs.openPartial(blob.digest, { size: 4000, chunkSize: 1000 })
    expect([q.prefixBytes, q.appendOffset, q.written.count]).toEqual([2500, 2500, 2])
    await q.append(blob.bytes.subarray(2500))
    expect((await q.commit()).digest).toBe(blob.digest)
  })

  it('resumes with another chunk size by keeping what is on disk; with another size it starts over', async () => {
    const blob = blobOf(4000, 4)
    let s = await reopen()
    const p = await s.blobs.openPartial(blob.digest, { size: 4000, chunkSize: 1000 })
    for (const i of [0, 2, 3]) await p.writeChunk(i, chunkOf(blob.bytes, i, 1000))
    await s.stop()
    s = await reopen()
    const q = await s.blobs.openPartial(blob.digest, { size: 4000, chunkSize: 500 })
    expect([...q.written.indexes()]).toEqual([0, 1, 4, 5, 6, 7])
    await s.stop()
    s = await reopen()
    expect((await s.blobs.listPartials())[0]).toMatchObject({ chunkSize: 500, chunksWritten: 6 })
    const r = await s.blobs.openPartial(blob.digest, { size: 4001, chunkSize: 500 })
    expect([r.written.count, r.prefixBytes]).toEqual([0, 0])
    expect(s.blobs.usage().bytes).toBe(4001)
  })

  it('trusts unsynced partial progress only within the boot that recorded it', async () => {
    let s = await reopen()
    const [x, y] = [blobOf(3000, 17), blobOf(3000, 18)]
    for (const b of [x, y]) {
      const p = await s.blobs.openPartial(b.digest, { size: 3000, chunkSize: 1000 })
      for (const i of [0, 2]) await p.writeChunk(i, chunkOf(b.bytes, i, 1000))
    }
    await s.stop()
    // Rewrite the records as a crash between checkpoints leaves them: progress recorded without a sync.
    const db = new Level<string, unknown>(join(dir, 'index'), { valueEncoding: 'json' })
    const partials = db.sublevel<string, Record<string, unknown>>('partials', { valueEncoding: 'json' })
    const recorded = (await partials.get(x.digest))!
    expect(recorded.synced).toBe(true)
    const thisBoot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
    await partials.put(x.digest, { ...recorded, synced: false, bootId: 'a-boot-before-a-power-loss' })
    await partials.put(y.digest, { ...(await partials.get(y.digest))!, synced: false, bootId: thisBoot })
    await db.close()

    s = await reopen()
    const listed = new Map((await s.blobs.listPartials()).map((p) => [p.digest, p.chunksWritten]))
    expect(listed).toEqual(
      new Map([
        [x.digest, 0],
        [y.digest, 2],
      ]),
    )
    expect((await s.blobs.openPartial(x.digest, { size: 3000, chunkSize: 1000 })).written.count).toBe(0)
    const q = await s.blobs.openPartial(y.digest, { size: 3000, chunkSize: 1000 })
    expectBytes(await q.readChunk(2), chunkOf(y.bytes, 2, 1000))
  })

  it('cleans up crash leftovers at open', async () => {
    let s = await reopen()
    const kept = blobOf(1000, 5)
    const vanished = blobOf(1000, 6)
    const shortened = blobOf(1000, 7)
    for (const b of [kept, vanished, shortened]) await putBlob(s.blobs, b)
    const noFile = blobOf(1000, 8)
    await s.blobs.openPartial(noFile.digest, { size: 1000, chunkSize: 100 })
    await s.stop()

    const orphan = blobOf(1200, 9)
    const impostor = blobOf(1200, 10)
    const unindexedPartial = blobOf(500, 11)
    await writeFile(join(dir, 'blobs', 'sha256', '.tmp-1234'), 'half a blob')
    await writeFile(`${blobPath(kept.digest)}.tmp`, 'half a blob')
    await rm(blobPath(vanished.digest))
    await truncate(blobPath(shortened.digest), 10)
    await rm(partialPath(noFile.digest))
    await writeFile(blobPath(orphan.digest), orphan.bytes)
    await writeFile(blobPath(impostor.digest), orphan.bytes)
    await writeFile(partialPath(unindexedPartial.digest), unindexedPartial.bytes)
    await writeFile(join(dir, 'partial', 'not-a-digest'), 'x')

    s = await reopen()
    expect((await readdir(join(dir, 'blobs', 'sha256'))).sort()).toEqual(
      [digestHex(kept.digest), digestHex(orphan.digest)].sort(),
    )
    expect(await readdir(join(dir, 'partial'))).toEqual([])
    const listed = []
    for await (const b of s.blobs.list()) listed.push(b.digest)
    expect(listed.sort()).toEqual([kept.digest, orphan.digest].sort())
    expect(await s.blobs.stat(vanished.digest)).toBeUndefined()
    expect(await s.blobs.stat(shortened.digest)).toBeUndefined()
    expect(await s.blobs.stat(impostor.digest)).toBeUndefined()
    expectBytes(await collect((await s.blobs.read(orphan.digest))!.stream), orphan.bytes)
    expect(await s.blobs.listPartials()).toEqual([])
    expect(s.blobs.usage()).toMatchObject({ bytes: 2200, blobs: 2 })
  })

  it('forgets a blob whose file disappears while it runs', async () => {
    const s = await reopen()
    const blob = blobOf(1000, 12)
    await putBlob(s.blobs, blob)
    await rm(blobPath(blob.digest))
    expect(await s.blobs.read(blob.digest)).toBeUndefined()
    expect(await s.blobs.stat(blob.digest)).toBeUndefined()
    expect(s.blobs.usage().bytes).toBe(0)
  })

  it('keeps access order, manifests and tags across a restart, and evicts down to a smaller quota', async () => {
    let s = await reopen()
    const [a, b, c] = [blobOf(1000, 13), blobOf(1000, 14), blobOf(1000, 15)]
    for (const x of [a, b, c]) await putBlob(s.blobs, x)
    await collect((await s.blobs.read(a.digest))!.stream)
    const accessed = (await s.blobs.stat(a.digest))!.lastAccess
    const manifest = new TextEncoder().encode('{"schemaVersion":2}')
    const m = blobOf(0, 0)
    await s.manifests.putManifest(m.digest, 'x/y', new Uint8Array(0))
    const tag = { digest: a.digest, mediaType: 'x/y', resolvedAt: 42 }
    await s.manifests.putTag('r/n:t', tag)
    await s.stop()

    const evicted: Digest[] = []
    s = await reopen({ maxBytes: 2000, onEvict: (d) => evicted.push(d) })
    expect(evicted).toEqual([b.digest])
    expect((await s.blobs.stat(a.digest))!.lastAccess).toBe(accessed)
    expect(await s.manifests.getTag('r/n:t')).toEqual(tag)
    expect(await s.manifests.getManifest(m.digest)).toEqual({ mediaType: 'x/y', bytes: new Uint8Array(0) })
    expect(manifest.byteLength).toBeGreaterThan(0)
  })

  it('refuses a second open of the same directory', async () => {
    await reopen()
    await expect(openFsStore({ dir })).rejects.toThrow()
  })

  it('streams blobs in bounded pieces rather than whole', async () => {
    const s = await reopen()
    const blob = blobOf(2 * 1024 * 1024 + 3, 16)
    await putBlob(s.blobs, blob, { chunkSize: 1024 * 1024, piece: 64 * 1024 })
    const sizes: number[] = []
    const parts: Uint8Array[] = []
    for await (const part of (await s.blobs.read(blob.digest))!.stream) {
      sizes.push((part as Buffer).byteLength)
      parts.push(part as Buffer)
    }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(256 * 1024)
    expect(sizes.length).toBeGreaterThan(8)
    expectBytes(new Uint8Array(Buffer.concat(parts)), blob.bytes)
  })
})
