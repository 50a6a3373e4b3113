import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { loadAgentConfig } from '../../agent/config.ts'
import { startAgent } from '../../agent/main.ts'
import { createLogger } from '../../shared/log/index.ts'
import { FakeRegistry } from '../shared/origin/fake-registry.ts'

// Issue 5, guarantee 4: credentials never appear in logs or metrics. The agent runs at debug level (the most it
// ever logs) through successes, denials and failures, with its own password and with clients' credentials.
const AGENT_PASSWORD = 'agent-pw-4f1c9e'
const CLIENT_PASSWORD = 'client-pw-8b2d7a'

let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

describe('credentials', () => {
  it('never reach the agent’s logs, /metrics or /status', async () => {
    const origin = await new FakeRegistry({
      auth: 'bearer',
      users: { agent: AGENT_PASSWORD, client: CLIENT_PASSWORD },
    }).start()
    cleanup.push(() => origin.stop())
    const second = await new FakeRegistry({ auth: 'basic', users: { client: CLIENT_PASSWORD } }).start()
    cleanup.push(() => second.stop())
    const dir = await mkdtemp(join(tmpdir(), 'shoal-secrets-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    let logged = ''
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString()
        done()
      },
    })
    const config = loadAgentConfig({
      argv: [
        ...['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', dir, '--config', 'shoal.yaml'],
        ...['--insecure-registry', second.upstream.registry],
      ],
      env: {},
      readFile: () =>
        stringify({
          registries: { [origin.upstream.registry]: { username: 'agent', password: AGENT_PASSWORD } },
        }),
    })
    const agent = await startAgent(config, { log: createLogger({ level: 'trace', destination }) })
    let closed = false
    cleanup.push(async () => {
      if (!closed) await agent.stop()
    })

    const tokenRes = await fetch(`${origin.url}/token?service=fake&scope=repository:team/app:pull`, {
      headers: { authorization: basic('client', CLIENT_PASSWORD) },
    })
    const clientToken = ((await tokenRes.json()) as { token: string }).token
    const clients = [
      basic('client', CLIENT_PASSWORD),
      basic('client', 'wrong-password-x9'),
      `Bearer ${clientToken}`,
      'Bearer not-a-token-q7',
      undefined,
    ]
    const paths = [
      '/v2/',
      '/v2/team/app/manifests/v1',
      `/v2/team/app/blobs/sha256:${'ab'.repeat(32)}`,
      `/v2/team/app/manifests/v1?ns=${second.upstream.registry}`,
      `/v2/team/app/blobs/sha256:${'cd'.repeat(32)}?ns=${second.upstream.registry}`,
    ]
    const statuses = new Set<number>()
    for (const authorization of clients) {
      for (const path of paths) {
        const res = await request(`${agent.url}${path}`, {
          headers: authorization === undefined ? {} : { authorization },
        })
        statuses.add(res.statusCode)
        await res.body.dump()
      }
    }
    // The run went through the paths that log: successes, denials and origin failures.
    expect(statuses).toContain(200)
    expect(statuses).toContain(401)
    const metrics = await (await request(`${agent.url}/metrics`)).body.text()
    const status = await (await request(`${agent.url}/status`)).body.text()
    closed = true
    await agent.stop()
    expect(logged.length).toBeGreaterThan(0)

    const secrets = [
      AGENT_PASSWORD,
      CLIENT_PASSWORD,
      'wrong-password-x9',
      clientToken,
      'not-a-token-q7',
      Buffer.from(`agent:${AGENT_PASSWORD}`).toString('base64'),
      Buffer.from(`client:${CLIENT_PASSWORD}`).toString('base64'),
      Buffer.from('client:wrong-password-x9').toString('base64'),
    ]
    for (const [where, text] of [
      ['log', logged],
      ['/metrics', metrics],
      ['/status', status],
    ] as const) {
      for (const s of secrets) expect(text.includes(s), `${where} holds a secret (${s.slice(0, 4)}…)`).toBe(false)
    }
  })
})
