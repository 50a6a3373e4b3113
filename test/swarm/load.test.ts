import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AgentProcess, spawnAgent } from '../fuzz/agent-process.ts'

const BLOB_BYTES = 32 * 1024 * 1024
const CLIENTS = 200
const DISCONNECTING = 10
/** A disconnecting client hangs up after this many bytes. */
const DISCONNECT_AFTER_BYTES = 2 * 1024 * 1024
/**
 * Peak RSS the agent may add over its idle baseline while serving all clients. Measured +312 MiB
 * on a loaded 2-core box: about 1.5 MiB per client (each reader's 1 MiB stream buffer, socket
 * buffers, GC slack), whatever the blob size. One whole-blob buffer per client would be 200 x 32
 * MiB = 6.4 GiB; the bound leaves ~60% for GC timing under load and stays far below that.
 */
const RSS_BOUND_BYTES = 512 * 1024 * 1024
/** The sampler fails the test early (and spares the machine) far above the bound. */
const RSS_ABORT_BYTES = 1536 * 1024 * 1024

let work: string
let server: http.Server
let originUrl: string
let agent: AgentProcess
const blob = randomBytes(BLOB_BYTES)
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
const originGets = new Map<string, number>()
let firstGet: PromiseWithResolvers<void>

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'shoal-load-'))
  firstGet = Promise.withResolvers<void>()
  // An origin that counts what it serves: the proof of single flight is here, not in Shoal's metrics.
  server = http.createServer((req, res) => {
    if (req.url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      return
    }
    if (req.url !== `/v2/load/app/blobs/${digest}`) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"BLOB_UNKNOWN","message":"x"}]}')
      return
    }
    if (req.method === 'GET') {
      originGets.set(req.url, (originGets.get(req.url) ?? 0) + 1)
      firstGet.resolve()
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.byteLength) })
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    // Paced in 1 MiB pieces so clients join a download that is still under way.
    let pos = 0
    const pump = () => {
      while (pos < blob.byteLength) {
        const piece = blob.subarray(pos, pos + 1024 * 1024)
        pos += piece.byteLength
        if (!res.write(piece)) {
          res.once('drain', () => setTimeout(pump, 5))
          return
        }
      }
      res.end()
    }
    pump()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  originUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  agent = await spawnAgent({ origin: originUrl, data: join(work, 'data'), cwd: work })
})

afterAll(async () => {
  await agent?.stop()
  server?.closeAllConnections()
  await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())))
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

interface ClientResult {
  readonly status: number
  readonly bytes: number
  readonly digest: string | undefined
}

/** One client on its own connection; `hangUpAfter` destroys the socket mid-body. */
function pull(url: string, hangUpAfter?: number): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const hash = createHash('sha256')
      let bytes = 0
      res.on('data', (b: Buffer) => {
        bytes += b.byteLength
        hash.update(b)
        if (hangUpAfter !== undefined && bytes >= hangUpAfter) {
          req.destroy()
          resolve({ status: res.statusCode ?? 0, bytes, digest: undefined })
        }
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, digest: `sha256:${hash.digest('hex')}` }))
      // After its own hang-up a disconnecting client has resolved already; before it, an error is an error.
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

describe('200 clients pulling one cold blob through one agent', () => {
  it('fetches it from the origin once, gives every client the right bytes, stays bounded, survives hang-ups', async () => {
    const url = `${agent.url}/v2/load/app/blobs/${digest}`
    expect((await pull(`${agent.url}/v2/`)).status).toBe(200)
    const baseline = agent.memory().rss
    let sampledPeak = baseline
    let runaway = false
    const sampler = setInterval(() => {
      if (runaway || !agent.alive()) return
      const { rss } = agent.memory()
      sampledPeak = Math.max(sampledPeak, rss)
      if (rss > RSS_ABORT_BYTES) {
        runaway = true
        agent.child.kill('SIGKILL')
      }
    }, 100)
    const started = Date.now()
    try {
      // The client whose request starts the download is one that hangs up: the download must not care.
      const first = pull(url, DISCONNECT_AFTER_BYTES)
      await firstGet.promise
      const rest = Array.from({ length: CLIENTS - 1 }, (_, i) =>
        pull(url, i < DISCONNECTING - 1 ? DISCONNECT_AFTER_BYTES + i * 1024 * 1024 : undefined),
      )
      const settled = await Promise.allSettled([first, ...rest])
      const elapsedMs = Date.now() - started
      expect(runaway, `agent RSS passed ${RSS_ABORT_BYTES} bytes (stopped)`).toBe(false)
      const results = settled.map((s) => {
        if (s.status === 'rejected') throw s.reason
        return s.value
      })
      const hungUp = results.slice(0, DISCONNECTING)
      const complete = results.slice(DISCONNECTING)
      for (const r of hungUp) expect(r.bytes).toBeLessThan(BLOB_BYTES)
      expect(complete).toHaveLength(CLIENTS - DISCONNECTING)
      for (const r of complete) {
        expect(r.status).toBe(200)
        expect(r.bytes).toBe(BLOB_BYTES)
        expect(r.digest).toBe(digest)
      }
      expect(originGets.get(`/v2/load/app/blobs/${digest}`)).toBe(1)
      const { peakRss } = agent.memory()
      const grew = Math.max(peakRss, sampledPeak) - baseline
      console.log(
        `load: ${CLIENTS} clients x ${BLOB_BYTES / 2 ** 20} MiB in ${elapsedMs} ms; agent RSS baseline ` +
          `${(baseline / 2 ** 20).toFixed(0)} MiB, peak +${(grew / 2 ** 20).toFixed(0)} MiB`,
      )
      expect(grew).toBeLessThan(RSS_BOUND_BYTES)
      // Still serving, and the blob is now a cache hit that costs the origin nothing.
      const again = await pull(url)
      expect(again.digest).toBe(digest)
      expect(originGets.get(`/v2/load/app/blobs/${digest}`)).toBe(1)
      expect(agent.errorLines).toEqual([])
    } finally {
      clearInterval(sampler)
    }
  })
})
