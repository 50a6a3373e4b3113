import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { WorkerHashPool } from '../../../shared/hashing/index.ts'
import type { Digest } from '../../../shared/oci/index.ts'
import {
  OriginClient,
  OriginStatusError,
  parseContentRange,
  pullBlob,
  type PullBlobOptions,
  type PullProgress,
} from '../../../shared/origin/index.ts'
import { MemoryContentStore, type PartialBlob } from '../../../shared/store/index.ts'
import { blobOf, collect, expectBytes } from '../store/helpers.ts'
import { startApp, upstreamOf } from './fake-registry.ts'

const KiB = 1024
/** Stops what a test started (servers close, clients stop). */
const open: (() => Promise<unknown>)[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((stop) => stop()))
})

/** What the origin saw of one blob GET. */
interface Asked {
  readonly range: string | undefined
}

/**
 * An origin serving one blob, where `answer` decides each GET (n counts from 0): it writes the raw response, so a
 * test can cut a body, stall it, or answer a Range from the wrong offset.
 */
async function origin(
  blob: { bytes: Uint8Array; digest: Digest },
  answer: (n: number, req: IncomingMessage, res: ServerResponse, bytes: Uint8Array) => void | Promise<void>,
) {
  const asked: Asked[] = []
  const { app, url } = await startApp((a) => {
    a.get(`/v2/demo/app/blobs/${blob.digest}`, async (req, reply) => {
      reply.hijack()
      asked.push({ range: req.headers.range })
      await answer(asked.length - 1, req.raw, reply.raw, blob.bytes)
    })
  })
  open.push(() => app.close())
  const client = new OriginClient({ retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } })
  open.push(() => client.stop())
  return { asked, client, upstream: upstreamOf(url) }
}

/** The honest answer: the whole blob, or the rest of it from a `bytes=N-` Range. */
function honest(req: IncomingMessage, res: ServerResponse, bytes: Uint8Array): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
  if (m === null) {
    res.writeHead(200, { 'content-length': String(bytes.byteLength) })
    res.end(bytes)
    return
  }
  const start = Number(m[1])
  res.writeHead(206, {
    'content-length': String(bytes.byteLength - start),
    'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}`,
  })
  res.end(bytes.subarray(start))
}

/** Sends `upTo` bytes of what `honest` would send, then breaks the connection. */
async function cutAt(upTo: number, req: IncomingMessage, res: ServerResponse, bytes: Uint8Array): Promise<void> {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
  const start = m === null ? 0 : Number(m[1])
  res.writeHead(m === null ? 200 : 206, {
    'content-length': String(bytes.byteLength - start),
    ...(m === null ? {} : { 'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` }),
  })
  res.write(bytes.subarray(start, start + upTo))
  await delay(50)
  res.destroy()
}

function options(
  o: Awaited<ReturnType<typeof origin>>,
  digest: Digest,
  store: MemoryContentStore,
  more: Partial<PullBlobOptions> = {},
): PullBlobOptions {
  return {
    origin: o.client,
    upstream: o.upstream,
    name: 'demo/app',
    digest,
    store,
    chunkSize: 16 * KiB,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    ...more,
  }
}

async function committed(store: MemoryContentStore, partial: PartialBlob, digest: Digest): Promise<Uint8Array> {
  await partial.commit()
  const res = await store.read(digest)
  return collect(res!.stream)
}

describe('pullBlob', () => {
  it('pulls a blob into a new partial in few appends, each reported in order', async () => {
    const blob = blobOf(300 * KiB, 1)
    const o = await origin(blob, (_n, req, res, bytes) => honest(req, res, bytes))
    const store = new MemoryContentStore()
    const seen: PullProgress[] = []
    const partials: [number, number][] = []
    const partial = await pullBlob(
      options(o, blob.digest, store, {
        batchBytes: 128 * KiB,
        onPartial: (p, from) => void partials.push([p.size, from]),
        onProgress: (p) => void seen.push(p),
      }),
    )
    expect(partials).toEqual([[300 * KiB, 0]])
    expect(o.asked).toEqual([{ range: undefined }])
    // Batched: 128 KiB, 128 KiB and the rest, not one append per socket piece.
    expect(seen.length).toBeLessThanOrEqual(4)
    let at = 0
    for (const p of seen) {
      expect(p.offset).toBe(at)
      at += p.bytes.byteLength
    }
    expect(at).toBe(300 * KiB)
    expectBytes(await committed(store, partial, blob.digest), blob.bytes)
  })

  it('with moveBytes, the pieces of a body the origin owns move to the hashing thread, and the blob commits', async () => {
    const blob = blobOf(600 * KiB, 11)
    const o = await origin(blob, (n, req, res, bytes) =>
      n === 0 ? cutAt(250 * KiB, req, res, bytes) : honest(req, res, bytes),
    )
    const hashing = new WorkerHashPool({ threads: 1 })
    open.push(() => hashing.stop())
    const store = new MemoryContentStore({ hashing })
    let moved = 0
    let landed = 0
    const partial = await pullBlob(
      options(o, blob.digest, store, {
        batchBytes: 128 * KiB,
        moveBytes: true,
        onProgress: (p) => {
          landed += p.length
          moved += p.length - p.pieces.reduce((n, b) => n + b.byteLength, 0)
        },
      }),
    )
    expect(landed).toBe(600 * KiB)
    // Socket pieces end their own buffers: all of them moved, left empty here (the first may carry the HTTP head).
    expect(moved).toBeGreaterThan(500 * KiB)
    expectBytes(await committed(store, partial, blob.digest), blob.bytes)
  })

  it('with moveBytes, bytes that fail the digest still fail the commit', async () => {
    const blob = blobOf(200 * KiB, 12)
    const wrong = new Uint8Array(blob.bytes)
    wrong[150 * KiB] = wrong[150 * KiB]! ^ 1
    const o = await origin({ ...blob, bytes: wrong }, (_n, req, res, bytes) => honest(req, res, bytes))
    const hashing = new WorkerHashPool({ threads: 1 })
    open.push(() => hashing.stop())
    const store = new MemoryContentStore({ hashing })
    const partial = await pullBlob(options(o, blob.digest, store, { moveBytes: true }))
    await expect(partial.commit()).rejects.toMatchObject({ name: 'DigestMismatchError' })
    expect(await store.stat(blob.digest)).toBeUndefined()
  })

  it.each([
    { flag: 'moveBytes', seed: 13, hashingThread: true },
    { flag: 'freeBytes', seed: 15, hashingThread: false },
  ] as const)('with $flag, a body the origin does not own keeps its pieces', async ({ flag, seed, hashingThread }) => {
    const blob = blobOf(100 * KiB, seed)
    let store: MemoryContentStore
    if (hashingThread) {
      const hashing = new WorkerHashPool({ threads: 1 })
      open.push(() => hashing.stop())
      store = new MemoryContentStore({ hashing })
    } else {
      store = new MemoryContentStore()
    }
    // Views of one buffer, as a caller that keeps it would hand them out.
    const pieces = [blob.bytes.subarray(0, 40 * KiB), blob.bytes.subarray(40 * KiB)]
    const partial = await pullBlob({
      ...options(await origin(blob, () => {}), blob.digest, store, { [flag]: true }),
      origin: {
        request: () =>
          Promise.resolve({
            status: 200,
            headers: { 'content-length': String(100 * KiB) },
            body: Readable.from(pieces),
          }),
      },
    })
    expect(pieces.map((p) => p.byteLength)).toEqual([40 * KiB, 60 * KiB])
    expectBytes(await committed(store, partial, blob.digest), blob.bytes)
  })

  it('with freeBytes, the pieces of a body the origin owns are freed once onProgress has had them', async () => {
    const blob = blobOf(600 * KiB, 14)
    const o = await origin(blob, (_n, req, res, bytes) => honest(req, res, bytes))
    const store = new MemoryContentStore()
    const seen: Uint8Array[] = []
    let heard = 0
    const partial = await pullBlob(
      options(o, blob.digest, store, {
        batchBytes: 128 * KiB,
        freeBytes: true,
        onProgress: (p) => {
          heard += p.pieces.reduce((n, b) => n + b.byteLength, 0)
          seen.push(...p.pieces)
        },
      }),
    )
    // onProgress had every byte; afterwards the socket reads are empty (the first may carry the HTTP head).
    expect(heard).toBe(600 * KiB)
    expect(seen.reduce((n, b) => n + b.byteLength, 0)).toBeLessThan(100 * KiB)
    expectBytes(await committed(store, partial, blob.digest), blob.bytes)
  })

  it('with flushAtChunkEnds, a chunk is reported as soon as its last byte is on disk', async () => {
    const blob = blobOf(100 * KiB, 2)
    const o = await origin(blob, async (_n, req, res, bytes) => {
      res.writeHead(200, { 'content-length': String(bytes.byteLength) })
      // Pieces that straddle chunk ends; the pause lets each one arrive alone.
      for (let at = 0; at < bytes.byteLength; at += 10 * KiB) {
        res.write(bytes.subarray(at, at + 10 * KiB))
        await delay(5)
      }
      res.end()
    })
    const store = new MemoryContentStore()
    const ends: number[] = []
    await pullBlob(
      options(o, blob.digest, store, {
        flushAtChunkEnds: true,
        onProgress: ({ partial, offset, bytes }) => {
          // Every chunk whose end this append reached is whole on disk now.
          for (let i = 0; i < partial.chunkCount; i++) {
            const end = Math.min((i + 1) * partial.chunkSize, partial.size)
            if (end > offset && end <= offset + bytes.byteLength) {
              expect(partial.written.has(i)).toBe(true)
              ends.push(end)
            }
          }
          // Never more than one chunk's worth past the last chunk end: nothing waits for a 1 MiB batch.
          expect(offset + bytes.byteLength - (ends.at(-1) ?? 0)).toBeLessThan(partial.chunkSize)
        },
      }),
    )
    expect(ends).toEqual([16, 32, 48, 64, 80, 96, 100].map((k) => k * KiB))
  })

  it('resumes a partial from its appendOffset with a Range request', async () => {
    const blob = blobOf(200 * KiB, 3)
    const o = await origin(blob, (_n, req, res, bytes) => honest(req, res, bytes))
    const store = new MemoryContentStore()
    const partial = await store.openPartial(blob.digest, { size: 200 * KiB, chunkSize: 16 * KiB })
    await partial.append(blob.bytes.subarray(0, 70 * KiB))
    const froms: number[] = []
    const got = await pullBlob(
      options(o, blob.digest, store, { partial, onPartial: (_p, from) => void froms.push(from) }),
    )
    expect(got).toBe(partial)
    expect(o.asked).toEqual([{ range: `bytes=${70 * KiB}-` }])
    expect(froms).toEqual([70 * KiB])
    expectBytes(await committed(store, got, blob.digest), blob.bytes)
  })

  it('refuses a 206 that starts elsewhere than asked, and starts over from the first byte', async () => {
    const blob = blobOf(200 * KiB, 4)
    const o = await origin(blob, (n, req, res, bytes) => {
      if (n > 0) return honest(req, res, bytes)
      // Asked for the rest from 70 KiB, sends from 64 KiB and says so: six KiB would land twice.
      const start = 64 * KiB
      res.writeHead(206, {
        'content-length': String(bytes.byteLength - start),
        'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}`,
      })
      res.end(bytes.subarray(start))
    })
    const store = new MemoryContentStore()
    const first = await store.openPartial(blob.digest, { size: 200 * KiB, chunkSize: 16 * KiB })
    await first.append(blob.bytes.subarray(0, 70 * KiB))
    const froms: number[] = []
    const got = await pullBlob(
      options(o, blob.digest, store, { partial: first, onPartial: (_p, from) => void froms.push(from) }),
    )
    expect(o.asked).toEqual([{ range: `bytes=${70 * KiB}-` }, { range: undefined }])
    expect(first.state).toBe('discarded')
    expect(got).not.toBe(first)
    expect(froms).toEqual([0])
    expectBytes(await committed(store, got, blob.digest), blob.bytes)
  })

  it('fails cleanly on a wrong 206 when no try is left, writing none of its bytes', async () => {
    const blob = blobOf(100 * KiB, 5)
    const o = await origin(blob, (_n, _req, res, bytes) => {
      res.writeHead(206, {
        'content-length': String(bytes.byteLength),
        'content-range': `bytes 0-${bytes.byteLength - 1}/*`,
      })
      res.end(bytes)
    })
    const store = new MemoryContentStore()
    const partial = await store.openPartial(blob.digest, { size: 100 * KiB, chunkSize: 16 * KiB })
    await partial.append(blob.bytes.subarray(0, 20 * KiB))
    const err = await pullBlob(options(o, blob.digest, store, { partial, retry: { attempts: 1 } })).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(OriginStatusError)
    expect(err).toMatchObject({ name: 'OriginStatusError', code: 'ORIGIN_STATUS', status: 502 })
    expect(partial.appendOffset).toBe(20 * KiB)
  })

  it('after a cut, the retry asks only for the bytes on disk, and completes the blob', async () => {
    const blob = blobOf(400 * KiB, 6)
    const o = await origin(blob, (n, req, res, bytes) =>
      n === 0 ? cutAt(150 * KiB, req, res, bytes) : honest(req, res, bytes),
    )
    const store = new MemoryContentStore()
    const atRetry: number[] = []
    let partial: PartialBlob | undefined
    const got = await pullBlob(
      options(o, blob.digest, store, {
        batchBytes: 1024 * KiB,
        onPartial: (p) => void (partial = p),
        random: () => {
          // Called for the pause before a retry: what is on disk then is what the Range must ask past.
          atRetry.push(partial!.appendOffset)
          return 0
        },
      }),
    )
    // What arrived before the cut was kept (flushed from the batch), so the resume starts right after it.
    expect(atRetry).toEqual([150 * KiB])
    expect(o.asked).toEqual([{ range: undefined }, { range: `bytes=${150 * KiB}-` }])
    expectBytes(await committed(store, got, blob.digest), blob.bytes)
  })

  it('gives up with ORIGIN_BODY_INCOMPLETE when every try breaks off; the bytes stay for a later resume', async () => {
    const blob = blobOf(100 * KiB, 7)
    const o = await origin(blob, (_n, req, res, bytes) => cutAt(10 * KiB, req, res, bytes))
    const store = new MemoryContentStore()
    let partial: PartialBlob | undefined
    const err = await pullBlob(options(o, blob.digest, store, { onPartial: (p) => void (partial = p) })).catch(
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ name: 'OriginError', code: 'ORIGIN_BODY_INCOMPLETE' })
    expect(o.asked.map((a) => a.range)).toEqual([undefined, `bytes=${10 * KiB}-`, `bytes=${20 * KiB}-`])
    expect(partial!.appendOffset).toBe(30 * KiB)
  })

  it('an abort mid-body stops the pull and nothing more is written', async () => {
    const blob = blobOf(200 * KiB, 8)
    const sentMore = Promise.withResolvers<void>()
    const ac = new AbortController()
    const o = await origin(blob, async (_n, _req, res, bytes) => {
      res.writeHead(200, { 'content-length': String(bytes.byteLength) })
      res.write(bytes.subarray(0, 40 * KiB))
      await delay(100)
      ac.abort(new Error('shutting down'))
      // The origin keeps sending after the abort: none of it may land.
      res.write(bytes.subarray(40 * KiB, 120 * KiB))
      await delay(100)
      sentMore.resolve()
      res.end(bytes.subarray(120 * KiB))
    })
    const store = new MemoryContentStore()
    let partial: PartialBlob | undefined
    const writes: number[] = []
    const err = await pullBlob(
      options(o, blob.digest, store, {
        signal: ac.signal,
        batchBytes: 16 * KiB,
        onPartial: (p) => void (partial = p),
        onProgress: ({ bytes }) => void writes.push(bytes.byteLength),
      }),
    ).catch((e: unknown) => e)
    expect((err as Error).message).toBe('shutting down')
    const atAbort = partial!.appendOffset
    expect(atAbort).toBeLessThanOrEqual(40 * KiB)
    await sentMore.promise
    await delay(50)
    expect(partial!.appendOffset).toBe(atAbort)
    expect(writes.reduce((a, b) => a + b, 0)).toBe(atAbort)
    // Kept for a resume, not discarded.
    expect(partial!.state).toBe('open')
  })

  it('starts over when the origin answers a Range with the whole blob', async () => {
    const blob = blobOf(100 * KiB, 9)
    const o = await origin(blob, (_n, _req, res, bytes) => {
      res.writeHead(200, { 'content-length': String(bytes.byteLength) })
      res.end(bytes)
    })
    const store = new MemoryContentStore()
    const first = await store.openPartial(blob.digest, { size: 100 * KiB, chunkSize: 16 * KiB })
    await first.append(blob.bytes.subarray(0, 30 * KiB))
    const got = await pullBlob(options(o, blob.digest, store, { partial: first }))
    expect(first.state).toBe('discarded')
    expect(o.asked).toHaveLength(1)
    expectBytes(await committed(store, got, blob.digest), blob.bytes)
  })

  it('hands a refusal back as OriginStatusError with its status, headers and body', async () => {
    const blob = blobOf(1 * KiB, 10)
    const o = await origin(blob, (_n, _req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}')
    })
    const err = await pullBlob(options(o, blob.digest, new MemoryContentStore())).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'OriginStatusError', code: 'ORIGIN_STATUS', status: 404 })
    expect((err as OriginStatusError).headers['content-type']).toBe('application/json')
    expect((err as OriginStatusError).body.toString()).toContain('BLOB_UNKNOWN')
  })

  it('asks nothing for a partial already complete on disk', async () => {
    const blob = blobOf(50 * KiB, 11)
    const o = await origin(blob, (_n, req, res, bytes) => honest(req, res, bytes))
    const store = new MemoryContentStore()
    const partial = await store.openPartial(blob.digest, { size: 50 * KiB, chunkSize: 16 * KiB })
    await partial.append(blob.bytes)
    const froms: number[] = []
    await pullBlob(options(o, blob.digest, store, { partial, onPartial: (_p, from) => void froms.push(from) }))
    expect(o.asked).toEqual([])
    expect(froms).toEqual([50 * KiB])
  })
})

describe('parseContentRange', () => {
  it.each([
    ['bytes 0-9/10', { start: 0, end: 9, size: 10 }],
    ['bytes 5-9/*', { start: 5, end: 9, size: undefined }],
    ['bytes 5-10/10', undefined],
    ['bytes 9-5/10', undefined],
    ['bytes */10', undefined],
    [undefined, undefined],
  ])('%s', (header, want) => {
    expect(parseContentRange(header)).toEqual(want)
  })
})
