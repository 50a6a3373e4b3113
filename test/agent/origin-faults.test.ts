import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { loadAgentConfig } from '../../agent/config.ts'
import { type RunningAgent, startAgent } from '../../agent/main.ts'
import { createLogger } from '../../shared/log/index.ts'

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`

interface FakeOrigin {
  url: string
  hits: Map<string, number>
  close(): Promise<void>
}

/** A hand-written origin that misbehaves on purpose. */
async function fakeOrigin(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<FakeOrigin> {
  const hits = new Map<string, number>()
  const server = http.createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1)
    handler(req, res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

async function agentFor(origin: FakeOrigin, args: string[] = []): Promise<RunningAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-faults-'))
  const config = loadAgentConfig({
    argv: ['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', dir, ...args],
    env: {},
    readFile: () => '',
  })
  const agent = await startAgent(config, { log: createLogger({ level: 'silent' }) })
  cleanup.push(
    () => agent.close(),
    () => rm(dir, { recursive: true, force: true }),
  )
  return agent
}

describe('agent against a faulty origin', () => {
  it('aborts a blob response whose bytes fail their digest and caches nothing', async () => {
    const good = randomBytes(3 * 1024 * 1024)
    const digest = sha256(good)
    const bad = Buffer.from(good)
    bad[bad.length - 1]! ^= 0xff // wrong in the very last byte: only the whole-blob digest can tell
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': String(bad.length), 'content-type': 'application/octet-stream' })
      res.end(bad)
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const url = `${agent.url}/v2/x/blobs/${digest}`
    const res = await request(url)
    expect(res.statusCode).toBe(200)
    let received = 0
    const read = (async () => {
      for await (const b of res.body) received += (b as Buffer).byteLength
    })()
    await expect(read).rejects.toThrow()
    // The client never got the whole body, so it cannot mistake it for a complete blob.
    expect(received).toBeLessThan(bad.length)
    // The store discards the partial before the failure is counted, so the client may see the abort first.
    await vi.waitFor(async () => {
      const metrics = await (await request(`${agent.url}/metrics`)).body.text()
      expect(metrics).toMatch(/shoal_digest_failures_total\{source="origin"\} 1/)
    })
    // Not cached: the next request goes to the origin again (and fails again).
    const again = await request(url)
    await expect(again.body.arrayBuffer()).rejects.toThrow()
    expect(origin.hits.get(`/v2/x/blobs/${digest}`)).toBe(2)
  })

  it('passes a 401 and its challenge from the origin to the client unchanged', async () => {
    const challenge = 'Basic realm="origin realm"'
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'application/json' })
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    for (const path of ['/v2/private/app/manifests/v1', `/v2/private/app/blobs/sha256:${'1'.repeat(64)}`]) {
      const res = await request(`${agent.url}${path}`)
      expect(res.statusCode).toBe(401)
      expect(res.headers['www-authenticate']).toBe(challenge)
      expect(await res.body.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] })
    }
  })

  it('rejects a manifest whose bytes do not match the digest the origin claims', async () => {
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': `sha256:${'2'.repeat(64)}`,
      })
      res.end('{"schemaVersion":2}')
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const res = await request(`${agent.url}/v2/x/manifests/v1`)
    expect(res.statusCode).toBe(502)
    expect(await res.body.json()).toMatchObject({ errors: [{ code: 'MANIFEST_INVALID' }] })
  })
})
