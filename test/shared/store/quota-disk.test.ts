/**
 * Guarantee 8 (issue 5), first half: the cache never takes more room on disk than its quota plus one chunk,
 * measured on the files themselves while many downloads run at once, not from the store's own accounting.
 */
import { readdirSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { digestOf } from '../../../shared/oci/digest.ts'
import { type FsStore, openFsStore, type PartialBlob, StoreFullError } from '../../../shared/store/index.ts'
import { bytesOf, chunkOf, collect, expectBytes } from './helpers.ts'

const KiB = 1024
const CHUNK = 64 * KiB
const QUOTA = 2 * 1024 * KiB
const DOWNLOADS = 40
const AT_ONCE = 4

/**
 * Bytes the cache holds on disk: blobs and partial downloads (the `level` index is bookkeeping, not cache).
 * A partial file is sparse (full length up front, filled as chunks land): its real bytes are the allocated
 * blocks; a complete file is counted by its length, so block rounding of the file system is not charged.
 */
function cacheBytesOnDisk(dir: string): number {
  let total = 0
  const walk = (path: string): void => {
    let entries: string[]
    try {
      entries = readdirSync(path)
    } catch {
      return
    }
    for (const name of entries) {
      const p = join(path, name)
      let st: ReturnType<typeof statSync>
      try {
        st = statSync(p)
      } catch {
        continue // unlinked between readdir and stat
      }
      if (st.isDirectory()) walk(p)
      else total += Math.min(st.size, st.blocks * 512)
    }
  }
  walk(join(dir, 'blobs'))
  walk(join(dir, 'partial'))
  return total
}

describe('FsContentStore quota, measured on disk', () => {
  const dirs: string[] = []
  const stores: FsStore[] = []
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()))
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
  })

  it('never holds more than the quota plus one chunk while many downloads run and evict at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-quota-'))
    dirs.push(dir)
    const evicted: string[] = []
    const store = await openFsStore({ dir, maxBytes: QUOTA, onEvict: (d) => evicted.push(d) })
    stores.push(store)
    let peak = 0
    let samples = 0
    const sample = (): void => {
      samples++
      peak = Math.max(peak, cacheBytesOnDisk(dir))
    }
    // Sizes from a few chunks to a quarter of the quota, not chunk-aligned: the last chunk is short.
    const blobs = Array.from({ length: DOWNLOADS }, (_, i) => {
      const bytes = bytesOf(3 * CHUNK + ((i * 97 * KiB + 1234) % (QUOTA / 4 - 3 * CHUNK)), i)
      return { bytes, digest: digestOf(bytes) }
    })
    // A sampler that runs between every I/O callback, besides the samples taken on every write below.
    let sampling = true
    const loop = (): void => {
      if (!sampling) return
      sample()
      setImmediate(loop)
    }
    loop()
    let full = 0
    const download = async (i: number): Promise<void> => {
      const blob = blobs[i]!
      let partial: PartialBlob
      try {
        partial = await store.blobs.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: CHUNK })
      } catch (err) {
        // Every unpinned blob is already gone and the rest is reserved by downloads under way: a clean refusal.
        if (err instanceof StoreFullError) {
          full++
          return
        }
        throw err
      }
      const off = partial.onProgress(sample)
      try {
        if (i % 2 === 0) {
          // Origin path: sequential appends of uneven pieces.
          for (let at = 0; at < blob.bytes.byteLength; at += 100 * KiB) {
            await partial.append(blob.bytes.subarray(at, at + 100 * KiB))
          }
        } else {
          // Swarm path: whole chunks, last first, out of order.
          for (let c = partial.chunkCount - 1; c >= 0; c -= 2)
            await partial.writeChunk(c, chunkOf(blob.bytes, c, CHUNK))
          for (let c = partial.chunkCount - 2; c >= 0; c -= 2)
            await partial.writeChunk(c, chunkOf(blob.bytes, c, CHUNK))
        }
        sample()
        await partial.commit()
        sample()
      } finally {
        off()
      }
      // Reading pins the blob: a reader holding it while others evict must not push the disk past the quota.
      if (i % 5 === 0) {
        const res = await store.blobs.read(blob.digest)
        if (res !== undefined) expectBytes(await collect(res.stream), blob.bytes)
      }
    }
    let next = 0
    await Promise.all(
      Array.from({ length: AT_ONCE }, async () => {
        while (next < DOWNLOADS) await download(next++)
      }),
    )
    sampling = false
    sample()

    const report = `peak ${peak} bytes on disk over ${samples} samples; quota ${QUOTA}, chunk ${CHUNK}`
    console.info(`quota on disk: ${report}, ${evicted.length} evictions, ${full} refused (store full)`)
    // The run did fill the cache and evict, or the bound proves nothing.
    expect(evicted.length, report).toBeGreaterThan(DOWNLOADS / 2)
    expect(peak, report).toBeGreaterThan(QUOTA / 2)
    expect(peak, report).toBeLessThanOrEqual(QUOTA + CHUNK)
    expect(store.blobs.usage().bytes).toBeLessThanOrEqual(QUOTA)
    // What is left is intact.
    for await (const info of store.blobs.list()) {
      const res = await store.blobs.read(info.digest)
      expect(digestOf(await collect(res!.stream))).toBe(info.digest)
    }
  })
})
