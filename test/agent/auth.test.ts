import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { loadAgentConfig } from '../../agent/config.ts'
import { type RunningAgent, startAgent } from '../../agent/main.ts'
import { createLogger } from '../../shared/log/index.ts'
import { FakeRegistry } from '../shared/origin/fake-registry.ts'

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

async function tokenOrigin(): Promise<FakeRegistry> {
  const r = await new FakeRegistry({ auth: 'bearer', users: { alice: 'alice-pw' } }).start()
  cleanup.push(() => r.stop())
  return r
}

async function agentFor(origin: FakeRegistry, registries?: Record<string, unknown>): Promise<RunningAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-auth-'))
  const config = loadAgentConfig({
    argv: [
      '--listen',
      '127.0.0.1:0',
      '--origin',
      origin.url,
      '--data',
      dir,
      ...(registries === undefined ? [] : ['--config', 'shoal.yaml']),
    ],
    env: {},
    readFile: () => stringify({ registries }),
  })
  const agent = await startAgent(config, { log: createLogger({ level: 'silent' }) })
  cleanup.push(
    () => agent.stop(),
    () => rm(dir, { recursive: true, force: true }),
  )
  return agent
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

// skopeo, podman and docker send credentials only after `GET /v2/` challenged them: the agent's
// answer there decides whether a client with credentials ever uses them.
describe('agent /v2/ in front of a token-auth origin', () => {
  it('passes the challenge to an anonymous client, then lets it in with the token it fetched itself', async () => {
    const origin = await tokenOrigin()
    const agent = await agentFor(origin)
    // Twice: the second time the agent already knows the realm and must still not fetch an anonymous token.
    for (let i = 0; i < 2; i++) {
      const ping = await get(`${agent.url}/v2/`)
      expect(ping.status).toBe(401)
      expect(ping.headers['www-authenticate']).toBe(`Bearer realm="${origin.url}/token",service="fake"`)
      expect((await get(`${agent.url}/v2/team/app/manifests/v1`)).status).toBe(401)
    }
    const tokenRes = await fetch(`${origin.url}/token?service=fake&scope=repository:team/app:pull`, {
      headers: { authorization: basic('alice', 'alice-pw') },
    })
    const authorization = `Bearer ${((await tokenRes.json()) as { token: string }).token}`
    const fetchedByAgent = origin.tokenRequests.length - 1

    expect((await get(`${agent.url}/v2/`, { authorization })).status).toBe(200)
    const manifest = await get(`${agent.url}/v2/team/app/manifests/v1`, { authorization })
    expect(manifest.status).toBe(200)
    expect(JSON.parse(manifest.body)).toEqual({ repo: 'team/app', ref: 'v1' })
    // The client's own token went to the origin as is; the agent asked for none on its behalf.
    expect(origin.tokenRequests.length - 1).toBe(fetchedByAgent)
    expect(origin.sentWith(authorization).length).toBe(2)
  })

  it('answers 200 to an anonymous client when it has credentials of its own for the origin', async () => {
    const origin = await tokenOrigin()
    const agent = await agentFor(origin, { [origin.upstream.registry]: { username: 'alice', password: 'alice-pw' } })
    expect((await get(`${agent.url}/v2/`)).status).toBe(200)
    expect((await get(`${agent.url}/v2/team/app/manifests/v1`)).status).toBe(200)
    expect(origin.tokenRequests.map((t) => t.authorization)).toEqual([
      basic('alice', 'alice-pw'),
      basic('alice', 'alice-pw'),
    ])
  })
})
