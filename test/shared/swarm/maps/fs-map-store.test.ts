import { appendFile, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeSignedChunkMap } from '../../../../shared/chunks/signed-map.ts'
import { digestHex } from '../../../../shared/oci/digest.ts'
import { FsMapStore } from '../../../../shared/swarm/maps/index.ts'
import { type Fixtures, fixtures, mapStoreConformance } from './map-store.conformance.ts'

const dirs: string[] = []
async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-maps-'))
  dirs.push(dir)
  return dir
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

mapStoreConformance('FsMapStore', async () => FsMapStore.open({ dataDir: await dataDir() }))

describe('FsMapStore on disk', () => {
  let f: Fixtures
  beforeAll(async () => {
    f = await fixtures()
  })
  const mapFile = (dir: string): string => join(dir, 'maps', `sha256-${digestHex(f.mapA.map.digest)}`)

  it('writes the canonical encoding to <dataDir>/maps/<alg>-<hex>, leaving no temp file', async () => {
    const dir = await dataDir()
    const store = await FsMapStore.open({ dataDir: dir })
    await store.put(f.mapA)
    expect(new Uint8Array(await readFile(mapFile(dir)))).toEqual(encodeSignedChunkMap(f.mapA))
    expect(await readdir(join(dir, 'maps'))).toEqual([`sha256-${digestHex(f.mapA.map.digest)}`])
  })

  it('finds maps and attestations again after a restart', async () => {
    const dir = await dataDir()
    const before = await FsMapStore.open({ dataDir: dir })
    const a = [await f.attest(f.mapB.map.digest, 0, { size: 4 * 64 * 1024 - 10 }), await f.attest(f.mapA.map.digest, 3)]
    await before.put(f.mapA)
    for (const x of a) await before.putAttestation(x)
    const after = await FsMapStore.open({ dataDir: dir })
    expect(await after.get(f.mapA.map.digest)).toEqual(f.mapA)
    expect(await after.attestations(f.mapA.map.digest)).toEqual([a[1]])
    expect(await after.attestations(f.mapB.map.digest)).toEqual([a[0]])
  })

  it('removes temp files a crash left behind when it opens', async () => {
    const dir = await dataDir()
    await FsMapStore.open({ dataDir: dir })
    await writeFile(`${mapFile(dir)}.tmp-deadbeef`, 'half a map')
    await FsMapStore.open({ dataDir: dir })
    expect(await readdir(join(dir, 'maps'))).toEqual([])
  })

  it('treats a corrupt map file as absent and removes it', async () => {
    const dir = await dataDir()
    const store = await FsMapStore.open({ dataDir: dir })
    await store.put(f.mapA)
    const bytes = await readFile(mapFile(dir))
    await writeFile(mapFile(dir), bytes.subarray(0, bytes.byteLength - 7))
    expect(await store.get(f.mapA.map.digest)).toBeUndefined()
    await expect(stat(mapFile(dir))).rejects.toThrow()
  })

  it("treats another blob's map under this name as absent", async () => {
    const dir = await dataDir()
    const store = await FsMapStore.open({ dataDir: dir })
    await writeFile(mapFile(dir), encodeSignedChunkMap(f.mapB))
    expect(await store.get(f.mapA.map.digest)).toBeUndefined()
  })

  it('ignores a torn last attestation record and cuts it off before appending again', async () => {
    const dir = await dataDir()
    const digest = f.mapA.map.digest
    const a0 = await f.attest(digest, 0)
    const a1 = await f.attest(digest, 1)
    const a2 = await f.attest(digest, 2)
    const first = await FsMapStore.open({ dataDir: dir })
    await first.putAttestation(a0)
    await first.putAttestation(a1)
    const log = `${mapFile(dir)}.att`
    const whole = await readFile(log)
    // A crash in the middle of the second append:
    await writeFile(log, whole.subarray(0, whole.byteLength - 30))
    const restarted = await FsMapStore.open({ dataDir: dir })
    expect(await restarted.attestations(digest)).toEqual([a0])
    await restarted.putAttestation(a2)
    expect(await restarted.attestations(digest)).toEqual([a0, a2])
    expect(await (await FsMapStore.open({ dataDir: dir })).attestations(digest)).toEqual([a0, a2])
  })

  it('stops at garbage in the attestation log rather than failing', async () => {
    const dir = await dataDir()
    const digest = f.mapA.map.digest
    const store = await FsMapStore.open({ dataDir: dir })
    const a0 = await f.attest(digest, 0)
    await store.putAttestation(a0)
    await appendFile(`${mapFile(dir)}.att`, Uint8Array.of(0x00, 0x05, 1, 2, 3, 4, 5))
    expect(await store.attestations(digest)).toEqual([a0])
  })
  it("appends a blob's attestations through one open file, closed when idle and when the blob is deleted", async () => {
    const dir = await dataDir()
    const digest = f.mapA.map.digest
    const log = `${mapFile(dir)}.att`
    /** This process's descriptors open on the log. */
    const openOnLog = async (): Promise<number> => {
      let n = 0
      for (const fd of await readdir('/proc/self/fd')) {
        if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === log) n++
      }
      return n
    }
    const store = await FsMapStore.open({ dataDir: dir })
    const all = [await f.attest(digest, 0), await f.attest(digest, 1), await f.attest(digest, 2)]
    for (const a of all) {
      await store.putAttestation(a)
      expect(await openOnLog()).toBe(1)
    }
    expect(await store.attestations(digest)).toEqual(all)
    expect(await (await FsMapStore.open({ dataDir: dir })).attestations(digest)).toEqual(all)
    // Closed once appends stop coming (2 s), opened again by the next one.
    await new Promise((r) => setTimeout(r, 2_500))
    expect(await openOnLog()).toBe(0)
    await store.putAttestation(all[0]!)
    expect(await openOnLog()).toBe(1)
    expect(await store.delete(digest)).toBe(true)
    expect(await openOnLog()).toBe(0)
    await expect(stat(log)).rejects.toThrow()
    await store.putAttestation(all[1]!)
    expect(await store.attestations(digest)).toEqual([all[1]])
  })
})
