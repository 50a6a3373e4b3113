/** A hand-written origin that misbehaves on purpose, and a real agent in front of it (no swarm). */
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, expect, vi } from 'vitest'
import { loadAgentConfig } from '../../agent/config.ts'
import { type RunningAgent, startAgent } from '../../agent/main.ts'
import { createLogger } from '../../shared/log/index.ts'

export const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`

export interface FakeOrigin {
  url: string
  hits: Map<string, number>
  /** Every request as it arrived: path, Range header and when (performance.now()). */
  log: { path: string; range: string | undefined; at: number }[]
  close(): Promise<void>
}

/** A hand-written origin that misbehaves on purpose. */
export async function fakeOrigin(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<FakeOrigin> {
  const hits = new Map<string, number>()
  const log: FakeOrigin['log'] = []
  const server = http.createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1)
    log.push({ path: req.url ?? '', range: req.headers.range, at: performance.now() })
    handler(req, res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    log,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/** Run after each test, last pushed first. */
export const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

export async function agentFor(origin: FakeOrigin, args: string[] = []): Promise<RunningAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-faults-'))
  const config = loadAgentConfig({
    argv: ['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', dir, ...args],
    env: {},
    readFile: () => '',
  })
  const agent = await startAgent(config, { log: createLogger({ level: 'silent' }) })
  cleanup.push(
    () => agent.stop(),
    () => rm(dir, { recursive: true, force: true }),
  )
  return agent
}

/** A blob served honestly: whole, or from `bytes=N-` with 206. */
export function serveBlob(req: http.IncomingMessage, res: http.ServerResponse, blob: Buffer): void {
  const from = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
  const start = from === null ? 0 : Number(from[1])
  const body = blob.subarray(start)
  res.writeHead(from === null ? 200 : 206, {
    'content-length': String(body.length),
    'content-type': 'application/octet-stream',
    ...(from === null ? {} : { 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` }),
  })
  res.end(body)
}

/** The body read in full and hashed, with the time its first byte arrived. */
export async function readAll(
  url: string,
): Promise<{ status: number; digest: string; bytes: number; firstByteAt: number }> {
  const res = await request(url)
  const h = createHash('sha256')
  let bytes = 0
  let firstByteAt = 0
  for await (const b of res.body) {
    if (bytes === 0) firstByteAt = performance.now()
    h.update(b as Buffer)
    bytes += (b as Buffer).byteLength
  }
  return { status: res.statusCode, digest: `sha256:${h.digest('hex')}`, bytes, firstByteAt }
}

/**
 * Resolves once the agent has no download in flight. A client has its last byte as soon as the blob's digest matched,
 * a moment before the commit has made the blob durable and ended its download (a loaded machine may stall a second).
 */
export async function downloadsSettled(agent: RunningAgent): Promise<void> {
  await vi.waitFor(
    async () => {
      const text = await (await request(`${agent.url}/metrics`)).body.text()
      expect(/^shoal_blobs_in_flight (\d+)$/m.exec(text)?.[1]).toBe('0')
    },
    { timeout: 10_000 },
  )
}

export async function blobHits(agent: RunningAgent): Promise<number> {
  const text = await (await request(`${agent.url}/metrics`)).body.text()
  return Number(/shoal_cache_lookups_total\{kind="blob",result="hit"\} (\d+)/.exec(text)?.[1] ?? 0)
}
