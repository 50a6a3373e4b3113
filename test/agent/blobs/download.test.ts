import { once } from 'node:events'
import { createServer, get, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { Download } from '../../../agent/blobs/download.ts'
import { MemoryContentStore } from '../../../shared/store/index.ts'
import { blobOf, bytesOf, chunkOf, expectBytes } from '../../shared/store/helpers.ts'

interface Watched {
  bytes(): number
  readonly ended: Promise<Uint8Array>
}

/** Collects a reader's bytes as they come, so a test can see how far it got before it ended or failed. */
function watch(r: Readable): Watched {
  const got: Buffer[] = []
  const ended = new Promise<Uint8Array>((resolve, reject) => {
    r.on('data', (b: Buffer) => got.push(b))
    r.on('end', () => resolve(new Uint8Array(Buffer.concat(got))))
    r.on('error', reject)
  })
  ended.catch(() => {})
  return { bytes: () => got.reduce((n, b) => n + b.byteLength, 0), ended }
}

/**
 * The same, with the reader piped to an HTTP response as the agent's server does (a failed reader destroys the
 * response): what a client receives, and whether its response ended cleanly or broke off.
 */
function served(r: Readable, length: number): Watched {
  let received = 0
  const server = createServer((_req, res) => {
    res.setHeader('content-length', String(length))
    r.once('error', () => res.destroy())
    r.pipe(res)
  })
  const ended = (async () => {
    try {
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const { port } = server.address() as AddressInfo
      const res = await new Promise<IncomingMessage>((resolve, reject) =>
        get(`http://127.0.0.1:${port}/`, resolve).once('error', reject),
      )
      const parts: Buffer[] = []
      res.on('data', (b: Buffer) => {
        received += b.byteLength
        parts.push(b)
      })
      await new Promise<void>((resolve, reject) => {
        res.once('end', () => (res.complete ? resolve() : reject(new Error('response broke off'))))
        res.once('error', reject)
        res.once('aborted', () => reject(new Error('response broke off')))
      })
      // The reader's own error, if it failed, says more than the broken response.
      return new Uint8Array(Buffer.concat(parts))
    } catch (err) {
      if (r.errored !== null) throw r.errored
      throw err
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })()
  ended.catch(() => {})
  return { bytes: () => received, ended }
}

describe.each([
  ['read as a stream', (r: Readable) => watch(r)],
  ['piped to an HTTP response', (r: Readable, length: number) => served(r, length)],
] as const)('Download readers follow the partial, %s', (_how, watch) => {
  it('origin bytes: the last byte waits for the digest, and a failed digest aborts the reader before it', async () => {
    const store = new MemoryContentStore()
    const wanted = blobOf(5000, 1)
    const dl = new Download(wanted.digest, store)
    const partial = await store.openPartial(wanted.digest, { size: 5000, chunkSize: 1000 })
    dl.attach(partial)
    const whole = watch(dl.reader(0, 5000), 5000)
    const tail = watch(dl.reader(4000, 5000), 1000)
    // Same size, other bytes: only the whole-blob digest can tell.
    await partial.append(bytesOf(5000, 2))
    await expect.poll(() => [whole.bytes(), tail.bytes()]).toEqual([4999, 999])
    await delay(20)
    expect([whole.bytes(), tail.bytes()]).toEqual([4999, 999])
    const err = await partial.commit().catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'DIGEST_MISMATCH' })
    dl.fail(err)
    await expect(whole.ended).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' })
    await expect(tail.ended).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' })
    expect(whole.bytes()).toBe(4999)
  })

  it('a Range of a blob in flight streams as verified chunks land out of order, ending before the commit', async () => {
    const store = new MemoryContentStore()
    const blob = blobOf(10_000, 3)
    const dl = new Download(blob.digest, store)
    const partial = await store.openPartial(blob.digest, { size: 10_000, chunkSize: 1000 })
    dl.attach(partial, { verifiedPerChunk: true })
    const middle = watch(dl.reader(2500, 7500), 5000)
    for (const i of [7, 3, 2, 6, 4, 5]) await partial.writeChunk(i, chunkOf(blob.bytes, i, 1000))
    expectBytes(await middle.ended, blob.bytes.subarray(2500, 7500))
    expect(partial.state).toBe('open')
  })

  it('carries on from where it was when the writer starts over on a new partial', async () => {
    const store = new MemoryContentStore()
    const blob = blobOf(6000, 4)
    const dl = new Download(blob.digest, store)
    const first = await store.openPartial(blob.digest, { size: 6000, chunkSize: 1000 })
    dl.attach(first)
    const reader = watch(dl.reader(0, 6000), 6000)
    await first.append(blob.bytes.subarray(0, 2000))
    await expect.poll(() => reader.bytes()).toBe(2000)
    // The origin ignored a Range: the partial is thrown away and the blob comes again from its first byte.
    await first.discard()
    await delay(10)
    const second = await store.openPartial(blob.digest, { size: 6000, chunkSize: 1000 })
    dl.attach(second)
    await second.append(blob.bytes)
    await second.commit()
    dl.committed()
    expectBytes(await reader.ended, blob.bytes)
  })

  it('swarm then origin: a reader that followed verified chunks holds the last byte once origin bytes come', async () => {
    const store = new MemoryContentStore()
    const wanted = blobOf(4000, 5)
    const dl = new Download(wanted.digest, store)
    const partial = await store.openPartial(wanted.digest, { size: 4000, chunkSize: 1000 })
    dl.attach(partial, { verifiedPerChunk: true })
    const reader = watch(dl.reader(0, 4000), 4000)
    await partial.writeChunk(0, chunkOf(wanted.bytes, 0, 1000))
    await expect.poll(() => reader.bytes()).toBe(1000)
    // The swarm stalled; the origin's bytes are not proven until the commit.
    dl.attach(partial)
    await partial.append(bytesOf(3000, 6), { at: 1000 })
    await expect.poll(() => reader.bytes()).toBe(3999)
    await delay(20)
    expect(reader.bytes()).toBe(3999)
    const err = await partial.commit().catch((e: unknown) => e)
    dl.fail(err)
    await expect(reader.ended).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' })
  })

  it('a reader that starts after the commit reads the stored blob', async () => {
    const store = new MemoryContentStore()
    const blob = blobOf(3000, 7)
    const dl = new Download(blob.digest, store)
    const partial = await store.openPartial(blob.digest, { size: 3000, chunkSize: 1000 })
    dl.attach(partial)
    await partial.append(blob.bytes)
    await partial.commit()
    expectBytes(await watch(dl.reader(1000, 3000), 2000).ended, blob.bytes.subarray(1000))
    dl.committed()
    expectBytes(await watch(dl.reader(0, 3000), 3000).ended, blob.bytes)
  })
})
