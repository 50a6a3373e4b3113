import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadAgentConfig } from '../../agent/config.ts'
import { type RunningAgent, startAgent } from '../../agent/main.ts'
import { createLogger } from '../../shared/log/index.ts'
import { FakeRegistry } from '../shared/origin/fake-registry.ts'

// Clients without `?ns=` (podman, CRI-O, skopeo) name the upstream with a path prefix on the mirror location.
describe('a leading registry-host component of the path', () => {
  let defaultOrigin: FakeRegistry
  let other: FakeRegistry
  let agent: RunningAgent
  let dir: string

  beforeAll(async () => {
    defaultOrigin = await new FakeRegistry({ auth: 'none' }).start()
    other = await new FakeRegistry({ auth: 'none' }).start()
    dir = await mkdtemp(join(tmpdir(), 'shoal-prefix-'))
    // both fakes serve plain http: the default origin says so in --origin, the other needs --insecure-registry
    const config = loadAgentConfig({
      argv: [
        ...['--listen', '127.0.0.1:0', '--origin', defaultOrigin.url, '--data', dir],
        ...['--insecure-registry', other.upstream.registry],
      ],
      env: {},
      readFile: () => '',
    })
    agent = await startAgent(config, { log: createLogger({ level: 'silent' }) })
  })
  afterAll(async () => {
    await agent.stop()
    await defaultOrigin.stop()
    await other.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const get = async (path: string) => {
    const res = await request(`${agent.url}${path}`)
    await res.body.dump()
    return res.statusCode
  }
  const seenPaths = (r: FakeRegistry) => r.seen.map((s) => s.url.split('?')[0])

  it('sends the request to that upstream, with the rest of the path as the name', async () => {
    const port = new URL(other.url).port
    await get(`/v2/127.0.0.1__${port}/team/app/manifests/v1`)
    expect(seenPaths(other)).toContain('/v2/team/app/manifests/v1')
    expect(seenPaths(defaultOrigin)).not.toContain('/v2/team/app/manifests/v1')
    expect(seenPaths(defaultOrigin).some((p) => p?.includes('127.0.0.1'))).toBe(false)
  })

  it('leaves an ordinary name on the default origin', async () => {
    await get('/v2/library/alpine/manifests/latest')
    expect(seenPaths(defaultOrigin)).toContain('/v2/library/alpine/manifests/latest')
    expect(seenPaths(other)).not.toContain('/v2/library/alpine/manifests/latest')
  })

  it('lets ?ns= win and keeps the path whole', async () => {
    const port = new URL(other.url).port
    await get(`/v2/sub.team/app/manifests/v2?ns=127.0.0.1:${port}`)
    expect(seenPaths(other)).toContain('/v2/sub.team/app/manifests/v2')
  })
})
