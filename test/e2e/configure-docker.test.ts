import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  type Dockerd,
  pushImage,
  type Registry,
  removeDir,
  shoalCli,
  startAgent,
  startDockerd,
  startRegistry,
  tempDir,
  treeSnapshot,
} from '../../harness/e2e/index.ts'

// `shoal configure docker` merges the agent into daemon.json; a real dockerd started with that file pulls a
// Docker Hub image through it. Docker mirrors only Docker Hub and names no registry on the mirror, so the
// agent's --origin (a local registry holding `library/…`) stands in for Docker Hub. `library/shoal-e2e`
// exists only there, and the agent alone knows that registry: a pull that works came through the agent.
describe('shoal configure docker, then docker pulls through the agent', () => {
  const cleanup = new Cleanup()
  let hub: Registry
  let agent: Agent
  let root: string

  // What the node had before: configure merges into it and --undo puts it back.
  const DAEMON_JSON = '{\n  "max-concurrent-downloads": 2\n}\n'

  beforeAll(async () => {
    hub = cleanup.add(await startRegistry(), (r) => r.stop())
    agent = cleanup.add(await startAgent({ origin: hub.url }), (a) => a.cleanup())
    root = cleanup.add(await tempDir('host-root'), removeDir)
    await mkdir(join(root, 'etc/docker'), { recursive: true })
    await writeFile(join(root, 'etc/docker/daemon.json'), DAEMON_JSON)
  })
  afterAll(() => cleanup.run())

  it('pulls a Docker Hub name via registry-mirrors; --undo restores daemon.json byte for byte', async () => {
    const before = await treeSnapshot(root)
    const args = ['configure', 'docker', '--root', root, '--mirror', agent.url]
    const out = await shoalCli(args)
    expect(out.stdout).toContain('only Docker Hub')
    const daemonJson = join(root, 'etc/docker/daemon.json')
    expect(JSON.parse(await readFile(daemonJson, 'utf8'))).toEqual({
      'max-concurrent-downloads': 2,
      'registry-mirrors': [agent.url],
    })
    expect((await shoalCli(args)).stdout).toContain('nothing to change')

    const image = cleanup.add(
      await pushImage(hub.url, 'library/shoal-e2e', 'v1', { layers: 2, layerBytes: 1024 * 1024 }),
      (i) => i.cleanup(),
    )
    const fromOrigin = () => agent.metric('shoal_bytes_received_total', { source: 'origin' })
    const received = await fromOrigin()
    const dockerd: Dockerd = cleanup.add(await startDockerd(daemonJson), (d) => d.stop())

    const info = await dockerd.docker(['info', '--format', '{{json .RegistryConfig.Mirrors}}'])
    expect(info.stdout).toContain(agent.url)
    await dockerd.docker(['pull', 'shoal-e2e:v1'])

    // Docker names an image by its config digest: the one pushed to the stand-in for Docker Hub.
    const config = JSON.parse(Buffer.from(image.image.root.bytes).toString('utf8')) as { config: { digest: string } }
    const id = await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', 'shoal-e2e:v1'])
    expect(id.stdout.trim()).toBe(config.config.digest)
    for (const d of image.blobDigests) expect((await hub.blobGets(d)).count).toBe(1)
    const blobBytes = image.image.blobs.reduce((sum, b) => sum + b.size, 0)
    expect((await fromOrigin()) - received).toBeGreaterThanOrEqual(blobBytes)
    expect(await agent.metric('shoal_http_requests_total', { route: 'manifest' })).toBeGreaterThan(0)

    const undone = await shoalCli(['configure', 'docker', '--root', root, '--undo'])
    expect(undone.stderr).toBe('')
    expect(await treeSnapshot(root)).toEqual(before)
  })
})
