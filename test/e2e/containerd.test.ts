import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  type Containerd,
  freePort,
  pushImage,
  type Registry,
  removeDir,
  startAgent,
  startContainerd,
  startRegistry,
  tempDir,
  writeHostsToml,
} from '../../harness/e2e/index.ts'

// containerd through a hosts.toml mirror: HEAD manifest by tag, GET manifests by digest, GET blobs,
// each with `?ns=<registry the reference names>`, and no `GET /v2/` first. The hosts.toml `server`
// is a closed port, so a pull that succeeds cannot have bypassed the agent.
describe('containerd (ctr) through a hosts.toml mirror', () => {
  const cleanup = new Cleanup()
  let defaultOrigin: Registry
  let other: Registry
  let agent: Agent
  let containerd: Containerd
  let deadServer: string

  beforeAll(async () => {
    defaultOrigin = cleanup.add(await startRegistry(), (r) => r.stop())
    other = cleanup.add(await startRegistry(), (r) => r.stop())
    agent = cleanup.add(await startAgent({ origin: defaultOrigin.url, insecureRegistries: [other.host] }), (a) =>
      a.cleanup(),
    )
    containerd = cleanup.add(await startContainerd(), (c) => c.stop())
    deadServer = `http://127.0.0.1:${await freePort()}`
  })
  afterAll(() => cleanup.run())

  it('pulls an image from the upstream named by ?ns=, not the default origin', async () => {
    const app = cleanup.add(await pushImage(other.url, 'team/svc', 'v1', { layers: 3, layerBytes: 1024 * 1024 }), (i) =>
      i.cleanup(),
    )
    const hostsDir = cleanup.add(await tempDir('hosts'), removeDir)
    await writeHostsToml(hostsDir, other.host, { server: deadServer, mirrors: [agent.url] })
    const before = await agent.metric('shoal_bytes_received_total', { source: 'origin' })

    await containerd.pull(`${other.host}/team/svc:v1`, { hostsDir })

    // containerd checked every digest on the way in; the store holds exactly this image.
    const stored = await containerd.contentDigests()
    expect(stored).toEqual(new Set([app.image.root.digest, ...app.blobDigests]))
    // The blobs came from `other` (the only registry that has them), through the agent.
    for (const digest of app.blobDigests) expect((await other.blobGets(digest)).count).toBe(1)
    expect((await defaultOrigin.blobGets()).count).toBe(0)
    const received = (await agent.metric('shoal_bytes_received_total', { source: 'origin' })) - before
    const blobBytes = app.image.blobs.reduce((sum, b) => sum + b.size, 0)
    expect(received).toBeGreaterThanOrEqual(blobBytes)
  })

  it('pulls one platform of a multi-arch index and fetches only its blobs', async () => {
    const multi = cleanup.add(
      await pushImage(defaultOrigin.url, 'team/multi', 'v1', {
        layers: 2,
        layerBytes: 1024 * 1024,
        platforms: ['linux/amd64', 'linux/arm64'],
      }),
      (i) => i.cleanup(),
    )
    const hostsDir = cleanup.add(await tempDir('hosts'), removeDir)
    await writeHostsToml(hostsDir, defaultOrigin.host, { server: deadServer, mirrors: [agent.url] })
    await defaultOrigin.resetLog()

    await containerd.pull(`${defaultOrigin.host}/team/multi:v1`, { hostsDir, platform: 'linux/arm64' })

    const arm64 = multi.platformBlobs('linux/arm64')
    const amd64 = multi.platformBlobs('linux/amd64')
    for (const digest of arm64) expect((await defaultOrigin.blobGets(digest)).count).toBe(1)
    for (const digest of amd64) expect((await defaultOrigin.blobGets(digest)).count).toBe(0)
    expect((await defaultOrigin.blobGets()).count).toBe(arm64.size)
    const stored = await containerd.contentDigests()
    for (const digest of arm64) expect(stored.has(digest)).toBe(true)
  })
})
