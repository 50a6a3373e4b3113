import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { digestHex } from '../../../shared/oci/digest.ts'
import { checkStore, openFsStore } from '../../../shared/store/index.ts'
import { blobOf, chunkOf, putBlob } from './helpers.ts'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-fsck-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const a = blobOf(10_000, 1)
const b = blobOf(5_000, 2)
const c = blobOf(4_500, 3)

/** Two complete blobs and a partial of `c` holding a 2,500-byte prefix and chunk 3 (of 1,000-byte chunks). */
async function populate(): Promise<void> {
  const store = await openFsStore({ dir })
  await putBlob(store.blobs, a)
  await putBlob(store.blobs, b)
  const partial = await store.blobs.openPartial(c.digest, { size: c.bytes.byteLength, chunkSize: 1000 })
  await partial.append(c.bytes.subarray(0, 2500))
  await partial.writeChunk(3, chunkOf(c.bytes, 3, 1000))
  await store.stop()
}

const blobPath = (digest: string) => join(dir, 'blobs', 'sha256', digestHex(digest as typeof a.digest))

describe('checkStore', () => {
  it('finds a cleanly closed store sound and reports what each partial claims', async () => {
    await populate()
    const check = await checkStore(dir)
    expect(check.problems).toEqual([])
    expect([...check.blobs.keys()].sort()).toEqual([a.digest, b.digest].sort())
    expect(check.partials).toHaveLength(1)
    const p = check.partials[0]!
    expect(p).toMatchObject({
      digest: c.digest,
      size: 4500,
      chunkSize: 1000,
      prefix: 2500,
      trusted: true,
      fileOk: true,
    })
    expect(p.claimed).toEqual([
      { start: 0, end: 2500 },
      { start: 3000, end: 4000 },
    ])
    // What it claims is what the partial file holds.
    const onDisk = await readFile(p.path)
    expect(onDisk.subarray(0, 2500).equals(Buffer.from(c.bytes.subarray(0, 2500)))).toBe(true)
    expect(onDisk.subarray(3000, 4000).equals(Buffer.from(c.bytes.subarray(3000, 4000)))).toBe(true)
  })

  it('reports a blob file that fails its digest, in both modes', async () => {
    await populate()
    const path = blobPath(a.digest)
    const bytes = await readFile(path)
    bytes[1234] = bytes[1234]! ^ 0xff
    await writeFile(path, bytes)
    for (const mode of ['crashed', 'reconciled'] as const) {
      const check = await checkStore(dir, { mode })
      expect(check.problems).toEqual([expect.objectContaining({ kind: 'blob-digest-mismatch', subject: a.digest })])
      expect(check.blobs.has(a.digest)).toBe(false)
    }
  })

  it('reports an indexed blob whose file is missing or has another size', async () => {
    await populate()
    await rm(blobPath(a.digest))
    await truncate(blobPath(b.digest), 10)
    const check = await checkStore(dir, { mode: 'crashed' })
    expect(check.problems.map((p) => [p.kind, p.subject]).sort()).toEqual(
      [
        ['blob-file-missing', a.digest],
        ['blob-size-mismatch', b.digest],
      ].sort(),
    )
  })

  it('allows what a kill leaves behind only in crashed mode, and the next open reconciles it', async () => {
    await populate()
    // A kill between the commit's rename and its index write: a verified file without a record.
    const orphan = blobOf(3000, 9)
    await writeFile(blobPath(orphan.digest), orphan.bytes)
    await writeFile(join(dir, 'blobs', 'sha256', 'junk.tmp'), 'x')
    await copyFile(blobPath(a.digest), join(dir, 'partial', 'sha256-' + digestHex(b.digest)))

    const crashed = await checkStore(dir, { mode: 'crashed' })
    expect(crashed.problems).toEqual([])
    expect(crashed.unindexed).toEqual([orphan.digest])

    const strict = await checkStore(dir, { mode: 'reconciled' })
    expect(strict.problems.map((p) => p.kind).sort()).toEqual(['blob-not-indexed', 'partial-not-indexed', 'stray-file'])

    await (await openFsStore({ dir })).stop()
    const after = await checkStore(dir, { mode: 'reconciled' })
    expect(after.problems).toEqual([])
    expect(after.blobs.has(orphan.digest)).toBe(true)
  })

  it('flags an unindexed blob file that fails its digest even in crashed mode', async () => {
    await populate()
    const orphan = blobOf(3000, 9)
    await writeFile(blobPath(orphan.digest), orphan.bytes.subarray(0, 2999))
    const check = await checkStore(dir, { mode: 'crashed' })
    expect(check.problems).toEqual([expect.objectContaining({ kind: 'blob-digest-mismatch', subject: orphan.digest })])
  })
})
