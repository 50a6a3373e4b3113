import type { ServerResponse } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { verifyChunkAttestation } from '../../shared/chunks/index.ts'
import { createLogger } from '../../shared/log/index.ts'
import { createMetrics } from '../../shared/metrics/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { OriginClient } from '../../shared/origin/index.ts'
import { MemoryContentStore } from '../../shared/store/index.ts'
import { LiveBlobs } from '../../shared/swarm/live.ts'
import { MemoryMapStore } from '../../shared/swarm/maps/index.ts'
import { StoreChunkSource } from '../../shared/swarm/source.ts'
import { PullerStoppedError } from '../../seeder/errors.ts'
import { Puller } from '../../seeder/puller.ts'
import { startApp } from '../shared/origin/fake-registry.ts'
import { blobOf } from '../shared/store/helpers.ts'

const KiB = 1024
const CHUNK = 64 * KiB
/** Stops what a test started (servers close, clients stop). */
const open: (() => Promise<unknown>)[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((stop) => stop()))
})

/** A seeder's puller against an origin whose every blob GET `answer` writes by hand. */
async function setup(
  blob: { bytes: Uint8Array; digest: Digest },
  answer: (n: number, range: string | undefined, res: ServerResponse) => Promise<void>,
) {
  const ranges: (string | undefined)[] = []
  const { app, url } = await startApp((a) => {
    a.get(`/v2/demo/app/blobs/${blob.digest}`, async (req, reply) => {
      reply.hijack()
      ranges.push(req.headers.range)
      await answer(ranges.length - 1, req.headers.range, reply.raw)
    })
  })
  open.push(() => app.close())
  const origin = new OriginClient({ retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } })
  open.push(() => origin.stop())
  const store = new MemoryContentStore()
  const maps = new MemoryMapStore()
  const live = new LiveBlobs()
  const key = await generateKeyPair('Ed25519')
  const upstream = { registry: new URL(url).host, baseUrl: new URL(url) }
  const progress: number[] = []
  const puller = new Puller({
    origin,
    store,
    maps,
    live,
    source: new StoreChunkSource({ store, maps, live, chunkSize: CHUNK }),
    key,
    chunkSize: CHUNK,
    metrics: createMetrics(),
    log: createLogger({ level: 'silent' }),
    upstreamFor: (r) => (r === upstream.registry ? upstream : undefined),
    onProgress: (_d, bytes) => progress.push(bytes),
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
  })
  return { puller, store, maps, live, key, ranges, progress, registry: upstream.registry }
}

/** Writes `bytes` from the start of a Range (or 0) in 8 KiB pieces, pausing `pauseMs` after each. */
async function send(
  res: ServerResponse,
  range: string | undefined,
  bytes: Uint8Array,
  o: { cutAt?: number; pauseMs?: number } = {},
) {
  const start = Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1] ?? 0)
  res.writeHead(start === 0 ? 200 : 206, {
    'content-length': String(bytes.byteLength - start),
    ...(start === 0 ? {} : { 'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` }),
  })
  const end = o.cutAt === undefined ? bytes.byteLength : start + o.cutAt
  for (let at = start; at < end; at += 8 * KiB) {
    if (res.destroyed) return
    res.write(bytes.subarray(at, Math.min(end, at + 8 * KiB)))
    await delay(o.pauseMs ?? 1)
  }
  if (o.cutAt === undefined) res.end()
  else res.destroy()
}

describe('Puller', () => {
  it('attests each chunk as its last byte lands, before the blob is complete', async () => {
    const blob = blobOf(400 * KiB, 1)
    const f = await setup(blob, (_n, range, res) => send(res, range, blob.bytes, { pauseMs: 5 }))
    const verifiedAtProgress: number[] = []
    const pull = f.puller.start(blob.digest, f.registry, 'demo/app')
    await pull.geometry
    const sampling = setInterval(() => {
      const live = f.live.get(blob.digest)
      if (live !== undefined) verifiedAtProgress.push(live.verified.count)
    }, 2)
    await pull.done
    clearInterval(sampling)
    // Chunks became servable one after another while the body still streamed in, not all at the end.
    expect(new Set(verifiedAtProgress.filter((n) => n > 0 && n < 7)).size).toBeGreaterThanOrEqual(4)
    expect(f.progress.length).toBeGreaterThanOrEqual(6)
    const attestations = await f.maps.attestations(blob.digest)
    expect(attestations.map((a) => a.index)).toEqual([0, 1, 2, 3, 4, 5, 6])
    for (const a of attestations) await verifyChunkAttestation(a, new Set([peerIdFromPrivateKey(f.key).toString()]))
    expect((await f.maps.get(blob.digest))?.map.chunks).toHaveLength(7)
    expect(f.progress.at(-1)).toBe(400 * KiB)
  })

  it('signs no map and keeps no blob when the origin sends other bytes than the digest names', async () => {
    const blob = blobOf(400 * KiB, 4)
    const forged = blobOf(400 * KiB, 5).bytes
    const f = await setup(blob, (_n, range, res) => send(res, range, forged))
    await expect(f.puller.start(blob.digest, f.registry, 'demo/app').done).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    })
    expect(await f.maps.get(blob.digest)).toBeUndefined()
    expect(await f.maps.attestations(blob.digest)).toEqual([])
    expect(await f.store.stat(blob.digest)).toBeUndefined()
  })

  it('resumes after a cut from the bytes on disk, and seeds the blob', async () => {
    const blob = blobOf(400 * KiB, 2)
    const f = await setup(blob, (n, range, res) => send(res, range, blob.bytes, n === 0 ? { cutAt: 160 * KiB } : {}))
    await f.puller.start(blob.digest, f.registry, 'demo/app').done
    expect(f.ranges).toEqual([undefined, `bytes=${160 * KiB}-`])
    expect((await f.store.stat(blob.digest))?.size).toBe(400 * KiB)
    expect((await f.maps.get(blob.digest))?.map.chunks).toHaveLength(7)
  })

  it('stop() aborts a pull under way: nothing more is written, the partial stays, new pulls are refused', async () => {
    const blob = blobOf(1600 * KiB, 3)
    const f = await setup(blob, (_n, range, res) => send(res, range, blob.bytes, { pauseMs: 20 }))
    const pull = f.puller.start(blob.digest, f.registry, 'demo/app')
    await pull.geometry
    // Mid-body: the first chunk is on disk and attested.
    await vi.waitFor(() => expect(f.progress.length).toBeGreaterThan(0))
    await f.puller.stop()
    await expect(pull.done).rejects.toBeInstanceOf(PullerStoppedError)
    expect(f.puller.inflight).toEqual([])
    const partial = f.store.getPartial(blob.digest)!
    const at = partial.appendOffset
    expect(at).toBeGreaterThan(0)
    expect(at).toBeLessThan(1600 * KiB)
    // The origin would still be sending: none of it lands.
    await delay(200)
    expect(partial.appendOffset).toBe(at)
    expect(partial.state).toBe('open')
    expect(f.live.get(blob.digest)).toBeUndefined()
    await expect(f.puller.start(blob.digest, f.registry, 'demo/app').done).rejects.toMatchObject({
      code: 'PULLER_STOPPED',
    })
  })
})
