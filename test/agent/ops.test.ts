import Fastify from 'fastify'
import { request } from 'undici'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMetrics } from '../../shared/metrics/index.ts'
import { opsRoutes, Readiness, RecentPulls } from '../../shared/ops/index.ts'
import { type Rig, startRig } from './harness.ts'

let rig: Rig | undefined
afterEach(async () => {
  await rig?.stop()
  rig = undefined
})

async function get(url: string) {
  const res = await request(url)
  return { status: res.statusCode, type: String(res.headers['content-type']), text: await res.body.text() }
}

/** The value of an unlabelled sample in Prometheus text format. */
function sample(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return m === null ? undefined : Number(m[1])
}

describe('Readiness', () => {
  it('names the first pending step until every step is done, in any order', () => {
    const r = new Readiness(['store', 'libp2p'])
    expect(r.reason()).toBe('waiting for store')
    r.done('libp2p')
    expect(r.reason()).toBe('waiting for store')
    r.done('store')
    expect(r.reason()).toBeUndefined()
  })
})

describe('RecentPulls', () => {
  it('keeps the newest first, bounded', () => {
    const r = new RecentPulls(2)
    for (const n of [1, 2, 3]) r.add({ digest: `sha256:${n}` as never, size: n, via: 'origin', ok: true, ms: 1, at: n })
    expect(r.list().map((p) => p.size)).toEqual([3, 2])
  })
})

describe('operations routes', () => {
  it('/readyz answers 503 with the reason while not ready, 200 after', async () => {
    const readiness = new Readiness(['store', 'libp2p'])
    const app = Fastify()
    await app.register(
      opsRoutes({
        metrics: createMetrics({ defaultMetrics: false }),
        notReady: () => readiness.reason(),
        status: () => ({}),
      }),
    )
    const before = await app.inject('/readyz')
    expect(before.statusCode).toBe(503)
    expect(before.json()).toEqual({ status: 'starting', reason: 'waiting for store' })
    readiness.done('store')
    expect((await app.inject('/readyz')).json()).toEqual({ status: 'starting', reason: 'waiting for libp2p' })
    readiness.done('libp2p')
    const after = await app.inject('/readyz')
    expect(after.statusCode).toBe(200)
    expect(after.json()).toEqual({ status: 'ready' })
    await app.close()
  })
})

describe('agent --metrics-listen', () => {
  it('serves /metrics, /healthz, /readyz, /status and the status page; the mirror port keeps them too', async () => {
    rig = await startRig({ extraArgs: ['--metrics-listen', '127.0.0.1:0'] })
    const base = rig.agent.metricsUrl!
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(base).not.toBe(rig.agent.url)
    for (const url of [base, rig.agent.url]) {
      expect((await get(`${url}/healthz`)).status).toBe(200)
      expect(await get(`${url}/readyz`)).toMatchObject({ status: 200 })
      const metrics = await get(`${url}/metrics`)
      expect(metrics.type).toMatch(/^text\/plain/)
      expect(metrics.text).toMatch(/^# HELP shoal_cache_bytes /m)
      const status = JSON.parse((await get(`${url}/status`)).text) as { role: string; ready: boolean }
      expect(status).toMatchObject({ role: 'agent', ready: true })
      const page = await get(`${url}/ui`)
      expect(page.type).toMatch(/^text\/html/)
      expect(page.text).toContain('<script type="module" src="/ui/app.js">')
      const js = await get(`${url}/ui/app.js`)
      expect(js.type).toMatch(/^text\/javascript/)
      expect(js.text).toContain("fetch('/status'")
    }
    // The metrics listener serves operations only, never the registry.
    expect((await get(`${base}/v2/`)).status).toBe(404)
  })

  it('is off by default', async () => {
    rig = await startRig()
    expect(rig.agent.metricsUrl).toBeUndefined()
  })
})

describe('agent gauges and /status', () => {
  it('shoal_cache_bytes follows the store on a plain mirror (no swarm)', async () => {
    rig = await startRig({ extraArgs: ['--metrics-listen', '127.0.0.1:0'] })
    const before = (await get(`${rig.agent.metricsUrl}/metrics`)).text
    expect(sample(before, 'shoal_cache_bytes')).toBe(0)
    let pulled = 0
    for (const blob of rig.image.blobs) {
      const r = await request(`${rig.agent.url}/v2/demo/app/blobs/${blob.digest}`)
      await r.body.arrayBuffer()
      expect(r.statusCode).toBe(200)
      pulled += blob.size
    }
    // A client has its last byte once the digest matched, a moment before the commit ends the download.
    const after = await vi.waitFor(
      async () => {
        const text = (await get(`${rig!.agent.metricsUrl}/metrics`)).text
        expect(sample(text, 'shoal_blobs_in_flight')).toBe(0)
        return text
      },
      { timeout: 10_000 },
    )
    expect(sample(after, 'shoal_cache_bytes')).toBe(pulled)
    expect(sample(after, 'shoal_peers_connected')).toBe(0)
  })

  it('lists recent pulls by digest and size and never names the repository', async () => {
    rig = await startRig({ extraArgs: ['--metrics-listen', '127.0.0.1:0'] })
    await (await request(`${rig.agent.url}/v2/demo/app/manifests/v1`)).body.arrayBuffer()
    const blob = rig.image.blobs[0]!
    await (await request(`${rig.agent.url}/v2/demo/app/blobs/${blob.digest}`)).body.arrayBuffer()
    // The pull is listed once its download ends, a moment after the client has its last byte.
    const text = await vi.waitFor(
      async () => {
        const t = (await get(`${rig!.agent.metricsUrl}/status`)).text
        expect((JSON.parse(t) as { recent: unknown[] }).recent).toHaveLength(1)
        return t
      },
      { timeout: 10_000 },
    )
    const status = JSON.parse(text) as { recent: { digest: string; size: number; via: string; ok: boolean }[] }
    expect(status.recent).toEqual([
      expect.objectContaining({ digest: blob.digest, size: blob.size, via: 'origin', ok: true }),
    ])
    expect(text).not.toContain('demo/app')
    expect(text).not.toContain('demo')
  })
})
