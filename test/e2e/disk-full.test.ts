/**
 * Guarantee 8 (issue 5), second half: a full disk. The agent's data dir is on a 64 MiB tmpfs, its quota far larger,
 * so the quota cannot save it: a 96 MiB layer runs the disk out of room mid-download. The client must get a clean
 * error (an OCI error body, or a response cut short — never a complete-looking body), nothing may be left that
 * claims to be complete and is not, the index and the files must agree, and the agent must keep serving what it has.
 * Needs root (mount).
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rm, stat, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  fetchBlob,
  fetchManifest,
  type PushedImage,
  pushImage,
  type Registry,
  runOk,
  startAgent,
  startRegistry,
  tempDir,
} from '../../harness/e2e/index.ts'

const MiB = 1024 * 1024
const DISK = '64m'
const BIG_LAYER_BYTES = 96 * MiB

interface Outcome {
  readonly status: number
  readonly contentType: string | null
  /** Bytes read before the body ended or broke. */
  readonly bytes: number
  readonly digest: string
  /** The body ended cleanly (not cut short). */
  readonly ended: boolean
  readonly text: string
}

/** GETs a blob and reads all it can: a body that breaks off is a result here, not an exception. */
async function pull(agent: Agent, name: string, digest: string): Promise<Outcome> {
  const res = await fetch(`${agent.url}/v2/${name}/blobs/${digest}`, { signal: AbortSignal.timeout(120_000) })
  const hash = createHash('sha256')
  let bytes = 0
  let ended = false
  const head: Buffer[] = []
  try {
    for await (const chunk of res.body ?? []) {
      hash.update(chunk)
      bytes += chunk.byteLength
      if (head.length < 4) head.push(Buffer.from(chunk))
    }
    ended = true
  } catch {
    // cut short: that is how a response whose headers were already sent reports a failure
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    bytes,
    digest: `sha256:${hash.digest('hex')}`,
    ended,
    text: Buffer.concat(head).subarray(0, 2000).toString('utf8'),
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}`
}

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path)
  } catch {
    return []
  }
}

/** Blob files (each hashed against its name), the index's records, and partial files, of a stopped agent. */
async function inspect(dataDir: string): Promise<{
  files: Map<string, number>
  index: { blobs: Map<string, number>; partials: Set<string> }
  partialFiles: Set<string>
}> {
  const files = new Map<string, number>()
  for (const hex of await listDir(join(dataDir, 'blobs', 'sha256'))) {
    const path = join(dataDir, 'blobs', 'sha256', hex)
    expect(await sha256File(path), path).toBe(`sha256:${hex}`)
    files.set(`sha256:${hex}`, (await stat(path)).size)
  }
  const partialFiles = new Set(
    (await listDir(join(dataDir, 'partial'))).map((name) => name.replace(/^sha256-/, 'sha256:')),
  )
  const db = new Level<string, unknown>(join(dataDir, 'index'), { valueEncoding: 'json' })
  await db.open()
  try {
    const blobs = new Map<string, number>()
    const partials = new Set<string>()
    for await (const [key, value] of db
      .sublevel<string, { size: number }>('blobs', { valueEncoding: 'json' })
      .iterator())
      blobs.set(key, value.size)
    for await (const key of db.sublevel<string, unknown>('partials', { valueEncoding: 'json' }).keys())
      partials.add(key)
    return { files, index: { blobs, partials }, partialFiles }
  } finally {
    await db.close()
  }
}

/**
 * Fills what is left of the file system with one file; returns its path. First waits for the space of the download
 * the agent dropped: an unlinked file still open in the agent (a response that was reading it) keeps its blocks
 * until it is closed, and would free them after the filler, leaving the disk not quite full.
 */
async function fillDisk(dir: string, wantFreeBytes: number): Promise<string> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const fs = await statfs(dir)
    if (fs.bavail * fs.bsize >= wantFreeBytes || Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const path = join(dir, 'filler')
  const fh = await open(path, 'w')
  const block = Buffer.alloc(MiB, 7)
  try {
    for (;;) await fh.write(block)
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOSPC') throw err
  } finally {
    await fh.close()
  }
  return path
}

describe('a full disk under the agent', () => {
  const cleanup = new Cleanup()
  let mountDir: string
  let dataDir: string
  let origin: Registry
  let small: PushedImage
  let big: PushedImage
  let agent: Agent

  beforeAll(async () => {
    mountDir = cleanup.add(await tempDir('tmpfs'), (d) => rm(d, { recursive: true, force: true }))
    await runOk('mount', ['-t', 'tmpfs', '-o', `size=${DISK}`, 'tmpfs', mountDir])
    cleanup.add(mountDir, (d) => runOk('umount', ['-l', d]).then(() => {}))
    dataDir = join(mountDir, 'data')
    await mkdir(dataDir)
    origin = cleanup.add(await startRegistry(), (r) => r.stop())
    small = cleanup.add(await pushImage(origin.url, 'small/app', 'v1', { layers: 2, layerBytes: MiB }), (i) =>
      i.cleanup(),
    )
    big = cleanup.add(await pushImage(origin.url, 'big/app', 'v1', { layers: 1, layerBytes: BIG_LAYER_BYTES }), (i) =>
      i.cleanup(),
    )
    // A quota of 1 GiB on a 64 MiB disk: only the disk can say no.
    agent = cleanup.add(
      await startAgent({ origin: origin.url, dataDir, extraArgs: ['--cache-max-bytes', '1GiB'] }),
      (a) => a.stop().then(() => {}),
    )
  })
  afterAll(() => cleanup.run())

  const bigLayer = () => big.image.blobs.reduce((a, b) => (b.size > a.size ? b : a))

  it('caches a small image first', async () => {
    expect((await fetchManifest(agent.url, 'small/app', 'v1')).status).toBe(200)
    for (const blob of small.image.blobs) {
      const res = await fetchBlob(agent.url, 'small/app', blob.digest)
      expect(res.status).toBe(200)
      expect(res.digest).toBe(blob.digest)
    }
  })

  it('answers a blob that does not fit with a clean error, twice', async () => {
    const layer = bigLayer()
    expect(layer.size).toBeGreaterThan(64 * MiB)
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await pull(agent, 'big/app', layer.digest)
      const seen = `attempt ${attempt}: status ${r.status}, ${r.bytes} of ${layer.size} bytes, ended ${r.ended}`
      console.info(`disk full: ${seen}${r.status === 200 ? '' : `, body ${r.text}`}`)
      if (r.status === 200) {
        // Headers went out before the disk filled: the body must break off, never end as if complete.
        expect(r.ended, seen).toBe(false)
        expect(r.bytes, seen).toBeLessThan(layer.size)
      } else {
        expect(r.status, seen).toBe(507)
        expect(r.contentType, seen).toMatch(/json/)
        const body = JSON.parse(r.text) as { errors: { code: string; message: string }[] }
        expect(body.errors[0]?.code, seen).toBeTypeOf('string')
      }
      // Never a complete body with other bytes than the blob's.
      if (r.ended && r.bytes === layer.size) expect(r.digest).toBe(layer.digest)
    }
    // The failed download lets go of the disk: nothing of it is left in partial/. Readers are told of the failure
    // first and the file is removed right after, so a client can see its abort a moment before the file is gone.
    await expect.poll(() => listDir(join(dataDir, 'partial')), { timeout: 10_000, interval: 50 }).toEqual([])
  })

  it('keeps serving what it has, even with the disk full to the last byte', async () => {
    // All but the small image and the index: the big layer's bytes are gone.
    const filler = await fillDisk(mountDir, 48 * MiB)
    try {
      // The image's manifest too, by tag (re-resolved at the origin) and by digest: a runtime needs both.
      for (const ref of ['v1', small.image.root.digest]) {
        const m = await fetchManifest(agent.url, 'small/app', ref)
        expect(m.status, `manifest ${ref}`).toBe(200)
        expect(m.bytes.equals(Buffer.from(small.image.root.bytes))).toBe(true)
      }
      for (const blob of small.image.blobs) {
        const res = await fetchBlob(agent.url, 'small/app', blob.digest)
        expect(res.status).toBe(200)
        expect(res.digest).toBe(blob.digest)
        expect(res.bytes).toBe(blob.size)
      }
      // And a new blob is refused at once with an OCI error: not even its first record fits.
      const r = await pull(agent, 'big/app', bigLayer().digest)
      console.info(`disk full to the last byte: status ${r.status}, ${r.bytes} bytes, body ${r.text}`)
      expect(r.status).toBe(507)
      expect(JSON.parse(r.text)).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] })
    } finally {
      await rm(filler, { force: true })
    }
  })

  it('leaves no corrupt blob, and complete records that agree with the files', async () => {
    // Stopped first: level holds a lock, and the files must be looked at as the next start would find them.
    const exit = await agent.stop()
    expect(exit.code).toBe(0)
    const { files, index, partialFiles } = await inspect(dataDir)
    // Every complete file is the blob its name says (checked in inspect), and has a record of its size.
    expect(index.blobs).toEqual(files)
    for (const blob of small.image.blobs) expect(files.get(blob.digest)).toBe(blob.size)
    expect(files.has(bigLayer().digest)).toBe(false)
    // A download the full disk refused may leave a half-made partial (its first record written, or its empty
    // sparse file created): transitional, like after a crash. Never one of a complete blob.
    for (const d of [...index.partials, ...partialFiles]) expect(files.has(d)).toBe(false)
  })

  it('starts again over the same data dir, serves the cached blobs byte for byte, and then agrees exactly', async () => {
    const again = await startAgent({ origin: origin.url, dataDir, extraArgs: ['--cache-max-bytes', '1GiB'] })
    agent = cleanup.add(again, (a) => a.stop().then(() => {}))
    for (const blob of small.image.blobs) {
      const res = await fetchBlob(again.url, 'small/app', blob.digest)
      expect(res.status).toBe(200)
      expect(res.digest).toBe(blob.digest)
    }
    expect((await again.stop()).code).toBe(0)
    // The open reconciled whatever the full disk left half made: now index and files agree both ways.
    const { files, index, partialFiles } = await inspect(dataDir)
    expect(index.blobs).toEqual(files)
    expect([...index.partials].sort()).toEqual([...partialFiles].sort())
  })
})
