import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { type HashPool, inlineHashing, WorkerHashPool } from '../../../shared/hashing/index.ts'
import { FileHandleFile } from '../../../shared/store/fs-backend.ts'
import { type FsStore, openFsStore, type PartialBlob } from '../../../shared/store/index.ts'
import { blobOf, bytesOf, expectBytes } from './helpers.ts'

const KiB = 1024
const MiB = 1024 * KiB
const dirs: string[] = []
const stores: FsStore[] = []
let server: Server | undefined
const workers = new WorkerHashPool({ threads: 1 })
afterAll(() => workers.stop())
afterEach(async () => {
  vi.restoreAllMocks()
  server?.closeAllConnections()
  server?.close()
  server = undefined
  await Promise.all(stores.splice(0).map((s) => s.stop()))
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
})

async function store(hashing: HashPool): Promise<FsStore['blobs']> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tap-'))
  dirs.push(dir)
  const s = await openFsStore({ dir, hashing })
  stores.push(s)
  return s.blobs
}

/** Bytes read from blob files from now on (the read-back a tap saves). */
function countReads(): { bytes: number } {
  const count = { bytes: 0 }
  const read = FileHandleFile.prototype.read
  vi.spyOn(FileHandleFile.prototype, 'read').mockImplementation(async function (this: FileHandleFile, into, position) {
    const n = await read.call(this, into, position)
    count.bytes += n
    return n
  })
  return count
}

/**
 * A client GETting the partial through an HTTP response (as the agent serves a download: the follower piped to it,
 * last byte held until the commit). Resolves once the response's headers are out, so the follower is waiting.
 */
async function client(
  partial: PartialBlob,
  opts: { paused?: boolean } = {},
): Promise<{ received(): number; body: Promise<Uint8Array>; resume(): void }> {
  server = createServer((_req, res) => {
    res.setHeader('content-length', String(partial.size))
    res.flushHeaders()
    const follower = partial.follow(undefined, { holdLastByte: true })
    // As the agent's download reader does: a follower that fails ends the response short of its length.
    follower.once('error', (err) => res.destroy(err))
    follower.pipe(res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const res = await request(`http://127.0.0.1:${port}/`)
  const parts: Buffer[] = []
  let received = 0
  const { promise: go, resolve: resume } = Promise.withResolvers<void>()
  if (opts.paused !== true) resume()
  const body = (async () => {
    await go
    for await (const part of res.body) {
      parts.push(part as Buffer)
      received += (part as Buffer).byteLength
    }
    return new Uint8Array(Buffer.concat(parts))
  })()
  body.catch(() => {})
  return { received: () => received, body, resume }
}

/** Appends `bytes` as an origin pull does: fresh 64 KiB pieces given up in 1 MiB batches. */
async function appendGivenUp(
  partial: PartialBlob,
  bytes: Uint8Array,
  between?: (appended: number) => Promise<void>,
): Promise<readonly Uint8Array[]> {
  const given: Uint8Array[] = []
  for (let off = 0; off < bytes.byteLength; off += MiB) {
    const batch: Uint8Array[] = []
    for (let p = off; p < Math.min(off + MiB, bytes.byteLength); p += 64 * KiB)
      batch.push(Buffer.from(bytes.subarray(p, Math.min(p + 64 * KiB, off + MiB, bytes.byteLength))))
    given.push(...batch)
    await partial.append(batch, { transfer: true })
    await between?.(Math.min(off + MiB, bytes.byteLength))
  }
  return given
}

/**
 * Fills the partial while the paused client's socket holds what was tapped to it, commits, and lets the client read
 * once the commit waits. No copy after a while (fake timers): the batch the socket holds, and every batch behind it,
 * wait for the client.
 */
async function commitWhileHeld(
  partial: PartialBlob,
  c: { resume(): void },
  fill: () => Promise<unknown>,
): Promise<void> {
  vi.useFakeTimers({ toFake: ['setTimeout'] })
  try {
    await fill()
    const committed = partial.commit()
    committed.catch(() => {})
    await new Promise((r) => setImmediate(r))
    c.resume()
    await committed
  } finally {
    vi.useRealTimers()
  }
}

describe.each([
  ['inline hashing', inlineHashing],
  ['hashing on a worker thread', workers],
])('a follower sending to a socket takes appended bytes as they land (%s)', (_name, hashing) => {
  it('sends every byte without reading it back, holds the last one until the commit, and hashes them all', async () => {
    const s = await store(hashing)
    const blob = blobOf(8 * MiB + 123, 1)
    const partial = await s.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: MiB })
    const c = await client(partial)
    const reads = countReads()
    // The client keeps up (on a loaded machine it might not, and a batch its socket has not taken yet is left to
    // the file): each batch is in before the next lands.
    await appendGivenUp(partial, blob.bytes, (appended) =>
      expect.poll(() => c.received()).toBeGreaterThanOrEqual(Math.min(appended, blob.bytes.byteLength - 1)),
    )
    await expect.poll(() => c.received()).toBe(blob.bytes.byteLength - 1)
    await new Promise((r) => setTimeout(r, 50))
    expect(c.received()).toBe(blob.bytes.byteLength - 1)
    // Only the held byte is read back, after the commit checked the digest of bytes the socket had sent.
    await partial.commit()
    expectBytes(await c.body, blob.bytes)
    expect(reads.bytes).toBeLessThan(64 * KiB)
  })

  it('sends the held last byte once the digest matched, without waiting for the commit to make the blob durable', async () => {
    const s = await store(hashing)
    const blob = blobOf(4 * MiB + 5, 10)
    const partial = await s.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: MiB })
    const c = await client(partial)
    await appendGivenUp(partial, blob.bytes)
    await expect.poll(() => c.received()).toBe(blob.bytes.byteLength - 1)
    // The commit's sync of the file hangs (a slow disk); the digest was checked before it.
    const synced = Promise.withResolvers<void>()
    const syncing = Promise.withResolvers<void>()
    const datasync = FileHandleFile.prototype.datasync
    vi.spyOn(FileHandleFile.prototype, 'datasync').mockImplementation(async function (this: FileHandleFile) {
      syncing.resolve()
      await synced.promise
      return datasync.call(this)
    })
    const committed = partial.commit()
    await syncing.promise
    expectBytes(await c.body, blob.bytes)
    expect(await s.stat(blob.digest)).toBeUndefined()
    synced.resolve()
    await committed
    expect(await s.stat(blob.digest)).toMatchObject({ size: blob.bytes.byteLength })
  })

  it('after a commit that failed past the digest check, holds the last byte again and hashes the bytes on disk anew', async () => {
    const s = await store(hashing)
    const blob = blobOf(4 * MiB + 5, 11)
    const partial = await s.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: MiB })
    await appendGivenUp(partial, blob.bytes)
    const reads = countReads()
    // The file's sync fails once (an I/O error): the digest matched, the blob is not durable.
    vi.spyOn(FileHandleFile.prototype, 'datasync').mockRejectedValueOnce(
      Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }),
    )
    await expect(partial.commit()).rejects.toThrow('EIO')
    expect(await s.stat(blob.digest)).toBeUndefined()
    const c = await client(partial)
    await expect.poll(() => c.received()).toBe(blob.bytes.byteLength - 1)
    await new Promise((r) => setTimeout(r, 50))
    expect(c.received()).toBe(blob.bytes.byteLength - 1)
    await partial.commit()
    expectBytes(await c.body, blob.bytes)
    expect(reads.bytes).toBeGreaterThanOrEqual(blob.bytes.byteLength)
    expect(await s.stat(blob.digest)).toMatchObject({ size: blob.bytes.byteLength })
  })

  it('aborts the response before its last byte when the bytes fail the digest', async () => {
    const s = await store(hashing)
    const size = 4 * MiB
    const digest = blobOf(size, 2).digest
    const wrong = bytesOf(size, 3)
    const partial = await s.openPartial(digest, { size, chunkSize: MiB })
    const c = await client(partial)
    await appendGivenUp(partial, wrong)
    await expect.poll(() => c.received()).toBe(size - 1)
    await expect(partial.commit()).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' })
    await expect(c.body).rejects.toThrow()
    expect(c.received()).toBeLessThan(size)
  })

  it('a client that does not read holds back neither the appends nor the digest', async () => {
    const s = await store(hashing)
    const blob = blobOf(48 * MiB, 4)
    const partial = await s.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: MiB })
    const c = await client(partial, { paused: true })
    // Every append resolves while the client reads nothing (its socket fills up and the tap stops taking bytes).
    await appendGivenUp(partial, blob.bytes)
    await partial.commit()
    c.resume()
    expectBytes(await c.body, blob.bytes)
  })

  it('the digest waits for the bytes a socket still holds, and hashes them once it lets go', async () => {
    const s = await store(hashing)
    const blob = blobOf(24 * MiB, 6)
    const partial = await s.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: MiB })
    const c = await client(partial, { paused: true })
    await commitWhileHeld(partial, c, () => appendGivenUp(partial, blob.bytes))
    expectBytes(await c.body, blob.bytes)
  })

  it('a chunk written ahead of the appends is hashed after the bytes a socket still holds, not before', async () => {
    // An origin pull resumed on a partial the swarm had written chunks of: the chunk after the appends' cursor is
    // read back and hashed while the batch before it waits for the paused client's socket.
    const s = await store(hashing)
    const size = 24 * MiB
    const blob = blobOf(size, 7)
    const partial = await s.openPartial(blob.digest, { size, chunkSize: MiB })
    const c = await client(partial, { paused: true })
    await commitWhileHeld(partial, c, async () => {
      await partial.writeChunk(21, Buffer.from(blob.bytes.subarray(21 * MiB, 22 * MiB)))
      await appendGivenUp(partial, blob.bytes.subarray(0, 21 * MiB))
      await partial.append([Buffer.from(blob.bytes.subarray(21 * MiB))])
    })
    expectBytes(await c.body, blob.bytes)
  })

  it('swarm chunks lent by the writer are sent without a read-back, and given back only once the socket let go', async () => {
    const s = await store(hashing)
    const blob = blobOf(8 * MiB + 123, 8)
    const partial = await s.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: MiB })
    const c = await client(partial)
    const reads = countReads()
    let lent = 0
    for (let i = 0; i * MiB < blob.bytes.byteLength; i++) {
      const end = Math.min((i + 1) * MiB, blob.bytes.byteLength)
      // A receive buffer of the swarm (shared memory the hashing thread reads in place, as the agent's are): reused
      // (here: overwritten) as soon as the partial gives it back.
      const buffer = hashing.sharedBuffer?.(end - i * MiB) ?? Buffer.alloc(end - i * MiB)
      buffer.set(blob.bytes.subarray(i * MiB, end))
      let released: Promise<void> | undefined
      await partial.writeChunk(i, buffer, { lent: (r) => (released = r) })
      if (released !== undefined) lent++
      void (released ?? Promise.resolve()).then(() => buffer.fill(0xee))
      await expect.poll(() => c.received()).toBeGreaterThanOrEqual(Math.min(end, blob.bytes.byteLength - 1))
    }
    await partial.commit()
    expectBytes(await c.body, blob.bytes)
    // Each chunk was sent as it landed (the client kept up); only the held last byte came from the file.
    expect(lent).toBe(9)
    expect(reads.bytes).toBeLessThan(64 * KiB)
  })

  it('a lent chunk a paused client holds is not given back, and chunks written after it are hashed before their write resolves', async () => {
    const s = await store(hashing)
    const chunks = 48
    const blob = blobOf(chunks * MiB, 9)
    const partial = await s.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: MiB })
    const c = await client(partial, { paused: true })
    const releases: Promise<void>[] = []
    let given = 0
    for (let i = 0; i < chunks; i++) {
      const buffer = Buffer.from(blob.bytes.subarray(i * MiB, (i + 1) * MiB))
      let released: Promise<void> | undefined
      await partial.writeChunk(i, buffer, { lent: (r) => (released = r) })
      if (released === undefined) {
        // Not lent: free once the write resolved, so reused at once; the digest must not see the new bytes.
        buffer.fill(0xee)
        continue
      }
      releases.push(released)
      void released.then(() => {
        given++
        buffer.fill(0xee)
      })
    }
    // Every write resolved while the client read nothing (its socket filled up; the kernel took the first chunks);
    // the chunk the socket still holds is not given back.
    await new Promise((r) => setTimeout(r, 100))
    expect(releases.length).toBeGreaterThan(0)
    expect(given).toBeLessThan(releases.length)
    await partial.commit()
    c.resume()
    expectBytes(await c.body, blob.bytes)
    await Promise.all(releases)
    expect(given).toBe(releases.length)
  })

  it('bytes the caller keeps (no transfer) are read back from the file, never held by the socket', async () => {
    const s = await store(hashing)
    const blob = blobOf(2 * MiB, 5)
    const partial = await s.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: MiB })
    const c = await client(partial)
    const reads = countReads()
    const kept = Buffer.from(blob.bytes)
    await partial.append(kept)
    // The caller may reuse its buffer once the append resolved: the client still gets the bytes on disk.
    kept.fill(0)
    await partial.commit()
    expectBytes(await c.body, blob.bytes)
    expect(reads.bytes).toBe(blob.bytes.byteLength)
  })
})
