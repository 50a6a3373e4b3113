import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { Authorizer } from '../../../agent/authz.ts'
import { Download } from '../../../agent/blobs/download.ts'
import { type BlobRef, fillPolicy, type PartialSink, type SwarmFill } from '../../../agent/blobs/fill.ts'
import { fetchFromOrigin } from '../../../agent/blobs/origin-fetch.ts'
import type { BlobRequest } from '../../../agent/blobs/service.ts'
import type { OriginPort } from '../../../agent/origin-port.ts'
import { createMetrics } from '../../../shared/metrics/index.ts'
import type { RecentPull } from '../../../shared/ops/index.ts'
import type { OriginRequest } from '../../../shared/origin/index.ts'
import { MemoryContentStore } from '../../../shared/store/index.ts'
import { blobOf, collect, expectBytes } from '../../shared/store/helpers.ts'

const KiB = 1024
const CHUNK = 64 * KiB
const upstream = { registry: 'origin.test', baseUrl: new URL('https://origin.test') }

/** An origin that serves one blob, honouring `Range: bytes=N-`, and records what it was asked. */
function fakeOrigin(bytes: Uint8Array): OriginPort & { asked: OriginRequest[] } {
  const asked: OriginRequest[] = []
  return {
    asked,
    request: async (_u, req) => {
      asked.push(req)
      const start = Number(/^bytes=(\d+)-$/.exec(req.headers?.['range'] ?? '')?.[1] ?? 0)
      const body = Readable.from([Buffer.from(bytes.subarray(start))])
      const headers: Record<string, string> = { 'content-length': String(bytes.byteLength - start) }
      if (start === 0) return { status: 200, headers, body }
      headers['content-range'] = `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}`
      return { status: 206, headers, body }
    },
  }
}

function setup(
  swarm: SwarmFill | undefined,
  opts: {
    signal?: AbortSignal
    authorize?: (b: BlobRef, signal: AbortSignal) => Promise<void>
    onPulled?: (pull: RecentPull) => void
    now?: () => number
  } = {},
) {
  const blob = blobOf(10 * CHUNK + 123, 1)
  const store = new MemoryContentStore()
  const origin = fakeOrigin(blob.bytes)
  const metrics = createMetrics()
  const authorizer = new Authorizer({ origin, ttlMs: 60_000, staleTtlMs: 60_000, isPublic: () => false })
  const events: string[] = []
  const fill = fillPolicy({
    store,
    ...(swarm === undefined ? {} : { swarm }),
    ...(opts.authorize === undefined ? {} : { authorize: opts.authorize }),
    ...(opts.onPulled === undefined ? {} : { onPulled: opts.onPulled }),
    ...(opts.now === undefined ? {} : { now: opts.now }),
    origin: async (b, sink, signal) => {
      events.push('origin')
      await fetchFromOrigin(sink, {
        origin,
        store,
        authorizer,
        metrics,
        chunkSize: CHUNK,
        upstream: b.upstream,
        name: b.name,
        digest: b.digest,
        authorization: b.authorization,
        signal,
      })
    },
    onComplete: (digest, info) => events.push(`complete ${digest === blob.digest} ${info.size}`),
    onAbandoned: () => events.push('abandoned'),
    signal: opts.signal ?? new AbortController().signal,
    log: { warn: () => events.push('warn') },
  })
  const req: BlobRequest = {
    method: 'GET',
    upstream,
    name: 'demo/app',
    digest: blob.digest,
    range: undefined,
    authorization: undefined,
    signal: new AbortController().signal,
  }
  const dl = new Download(blob.digest, store)
  return { blob, store, origin, events, run: () => fill(dl, req), dl }
}

async function stored(store: MemoryContentStore, digest: BlobRef['digest']): Promise<Uint8Array> {
  const r = await store.read(digest)
  return collect(r!.stream)
}

describe('fillPolicy: swarm first, else origin, then announce', () => {
  it('asks the origin about the starting client before the swarm fills, and a refusal reaches no peer', async () => {
    const calls: string[] = []
    const swarm: SwarmFill = {
      fill: async () => {
        calls.push('swarm')
        throw new Error('unused')
      },
    }
    const denied = Object.assign(new Error('denied'), { status: 403 })
    const f = setup(swarm, {
      authorize: async (b) => {
        calls.push(`authorize ${b.name}`)
        throw denied
      },
    })
    await expect(f.run()).rejects.toBe(denied)
    expect(calls).toEqual(['authorize demo/app'])
    expect(f.origin.asked).toEqual([])
    expect(f.events).not.toContain('origin')
  })

  it('a blob the swarm delivers never touches the origin', async () => {
    let f: ReturnType<typeof setup> | undefined = undefined
    const swarm: SwarmFill = {
      fill: async (b, sink) => {
        const partial = await f!.store.openPartial(b.digest, { size: f!.blob.bytes.byteLength, chunkSize: CHUNK })
        sink.attach(partial, { verifiedPerChunk: true })
        await partial.append(f!.blob.bytes)
        await partial.commit()
      },
    }
    f = setup(swarm)
    await f.run()
    expect(f.origin.asked).toEqual([])
    // The swarm announces what it fills itself; the policy announces only what came from the origin.
    expect(f.events).toEqual([])
    expectBytes(await stored(f.store, f.blob.digest), f.blob.bytes)
  })

  it('swarm unavailable: the origin fills the blob, then it is announced', async () => {
    const f = setup({
      fill: () => Promise.reject(Object.assign(new Error('no seeder answered'), { code: 'SWARM_UNAVAILABLE' })),
    })
    await f.run()
    expect(f.origin.asked.map((r) => r.headers)).toEqual([{}])
    expect(f.events).toEqual(['abandoned', 'warn', 'origin', `complete true ${f.blob.bytes.byteLength}`])
    expectBytes(await stored(f.store, f.blob.digest), f.blob.bytes)
  })

  it('swarm stalls midway: the origin resumes after the bytes already on disk', async () => {
    let f: ReturnType<typeof setup> | undefined = undefined
    let sunk: PartialSink | undefined
    const swarm: SwarmFill = {
      fill: async (b, sink) => {
        sunk = sink
        const partial = await f!.store.openPartial(b.digest, { size: f!.blob.bytes.byteLength, chunkSize: CHUNK })
        sink.attach(partial, { verifiedPerChunk: true })
        // Four verified chunks land, then no peer sends another byte.
        for (let i = 0; i < 4; i++) await partial.writeChunk(i, f!.blob.bytes.subarray(i * CHUNK, (i + 1) * CHUNK))
        throw new Error('no byte from the swarm for the stall timeout')
      },
    }
    f = setup(swarm)
    await f.run()
    expect(sunk).toBe(f.dl)
    expect(f.origin.asked.map((r) => r.headers)).toEqual([{ range: `bytes=${4 * CHUNK}-` }])
    expect(f.events).toEqual(['abandoned', 'warn', 'origin', `complete true ${f.blob.bytes.byteLength}`])
    expectBytes(await stored(f.store, f.blob.digest), f.blob.bytes)
  })

  it('without a swarm, the origin fills and nothing is announced', async () => {
    const f = setup(undefined)
    await f.run()
    expect(f.events).toEqual(['origin'])
    expectBytes(await stored(f.store, f.blob.digest), f.blob.bytes)
  })

  it('shutting down, a swarm failure does not send the blob to the origin', async () => {
    const closing = new AbortController()
    const f = setup(
      {
        fill: async (_b, _sink, signal) => {
          closing.abort()
          signal.throwIfAborted()
        },
      },
      { signal: closing.signal },
    )
    await expect(f.run()).rejects.toMatchObject({ name: 'AbortError' })
    expect(f.origin.asked).toEqual([])
    expect(f.events).toEqual(['abandoned'])
  })
})

describe('fillPolicy: the recent-pulls hook', () => {
  /** A clock that moves 5 ms at each reading. */
  const ticking = () => {
    let t = 1_000
    return () => (t += 5)
  }
  const fails = (): SwarmFill => ({ fill: () => Promise.reject(new Error('no seeder answered')) })

  it('a blob the swarm fills is a swarm pull, with its size and time', async () => {
    const pulls: RecentPull[] = []
    let f: ReturnType<typeof setup> | undefined = undefined
    const swarm: SwarmFill = {
      fill: async (b, sink) => {
        const partial = await f!.store.openPartial(b.digest, { size: f!.blob.bytes.byteLength, chunkSize: CHUNK })
        sink.attach(partial, { verifiedPerChunk: true })
        await partial.append(f!.blob.bytes)
        await partial.commit()
      },
    }
    f = setup(swarm, { onPulled: (p) => pulls.push(p), now: ticking() })
    await f.run()
    expect(pulls).toEqual([
      { digest: f.blob.digest, size: f.blob.bytes.byteLength, via: 'swarm', ok: true, ms: 5, at: 1_010 },
    ])
  })

  it('the origin after the swarm is swarm+origin; without a swarm it is origin', async () => {
    const pulls: RecentPull[] = []
    const after = setup(fails(), { onPulled: (p) => pulls.push(p) })
    await after.run()
    const alone = setup(undefined, { onPulled: (p) => pulls.push(p) })
    await alone.run()
    expect(pulls.map((p) => [p.via, p.ok, p.size])).toEqual([
      ['swarm+origin', true, after.blob.bytes.byteLength],
      ['origin', true, alone.blob.bytes.byteLength],
    ])
  })

  it('a failed pull is recorded too: swarm when refused before any source, swarm+origin when the origin failed', async () => {
    const pulls: RecentPull[] = []
    const refused = setup(fails(), {
      onPulled: (p) => pulls.push(p),
      authorize: () => Promise.reject(Object.assign(new Error('denied'), { status: 403 })),
    })
    await expect(refused.run()).rejects.toThrow('denied')
    const closing = new AbortController()
    const cut = setup(fails(), { onPulled: (p) => pulls.push(p), signal: closing.signal })
    closing.abort()
    await expect(cut.run()).rejects.toThrow()
    const broken = setup(fails(), { onPulled: (p) => pulls.push(p) })
    broken.origin.request = () => Promise.reject(new Error('origin down'))
    await expect(broken.run()).rejects.toThrow()
    expect(pulls.map((p) => [p.via, p.ok])).toEqual([
      ['swarm', false],
      ['swarm', false],
      ['swarm+origin', false],
    ])
  })
})
