import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  podmanInspect,
  podmanPull,
  pushImage,
  type Registry,
  removeDir,
  shoalCli,
  startAgent,
  startRegistry,
  tempDir,
  treeSnapshot,
} from '../../harness/e2e/index.ts'

// podman sends no ?ns= to a mirror. `shoal configure podman` writes mirror locations that name their
// registry in the path (127.0.0.1:AGENT/127.0.0.1__PORT), and the agent maps that prefix to the upstream:
// one agent serves two registries, neither of them its default origin. Each registry's own location is
// plain http spoken to as https, so only the mirror can make a pull work.
describe('shoal configure podman, then podman pulls from two registries through one agent', () => {
  const cleanup = new Cleanup()
  let first: Registry
  let second: Registry
  let defaultOrigin: Registry
  let agent: Agent
  let root: string
  let storage: string

  const REGISTRIES_CONF = "# this node's policy\nunqualified-search-registries = []\n"

  beforeAll(async () => {
    first = cleanup.add(await startRegistry(), (r) => r.stop())
    second = cleanup.add(await startRegistry(), (r) => r.stop())
    defaultOrigin = cleanup.add(await startRegistry(), (r) => r.stop())
    agent = cleanup.add(
      await startAgent({ origin: defaultOrigin.url, insecureRegistries: [first.host, second.host] }),
      (a) => a.cleanup(),
    )
    root = cleanup.add(await tempDir('host-root'), removeDir)
    storage = cleanup.add(await tempDir('podman'), removeDir)
    await mkdir(join(root, 'etc/containers'), { recursive: true })
    await writeFile(join(root, 'etc/containers/registries.conf'), REGISTRIES_CONF)
  })
  afterAll(() => cleanup.run())

  it('pulls each image from its own registry via the agent; --undo restores registries.conf byte for byte', async () => {
    const before = await treeSnapshot(root)
    const args = ['configure', 'podman', '--root', root, '--registries', `${first.host},${second.host}`]
    await shoalCli([...args, '--mirror', agent.url])
    const registriesConf = join(root, 'etc/containers/registries.conf')
    const text = await readFile(registriesConf, 'utf8')
    expect(text.startsWith(REGISTRIES_CONF)).toBe(true)
    expect(text).toContain(`location = "${agent.host}/${second.host.replace(':', '__')}"`)

    // The same name in both registries, different images: only the path prefix tells them apart.
    const a = cleanup.add(
      await pushImage(first.url, 'team/app', 'v1', { layers: 2, layerBytes: 512 * 1024, seed: 'a' }),
      (i) => i.cleanup(),
    )
    const b = cleanup.add(
      await pushImage(second.url, 'team/app', 'v1', { layers: 2, layerBytes: 512 * 1024, seed: 'b' }),
      (i) => i.cleanup(),
    )
    const fromOrigin = () => agent.metric('shoal_bytes_received_total', { source: 'origin' })
    const received = await fromOrigin()
    const opts = { registriesConf, storageDir: join(storage, 'store') }

    await podmanPull(`${first.host}/team/app:v1`, opts)
    await podmanPull(`${second.host}/team/app:v1`, opts)

    expect((await podmanInspect(`${first.host}/team/app:v1`, opts)).digest).toBe(a.image.root.digest)
    expect((await podmanInspect(`${second.host}/team/app:v1`, opts)).digest).toBe(b.image.root.digest)
    for (const d of a.blobDigests) expect((await first.blobGets(d)).count).toBe(1)
    for (const d of b.blobDigests) expect((await second.blobGets(d)).count).toBe(1)
    expect((await defaultOrigin.requests()).filter((r) => r.path !== '/v2/' && r.path !== '/v2')).toEqual([])
    const blobBytes = [...a.image.blobs, ...b.image.blobs].reduce((sum, x) => sum + x.size, 0)
    expect((await fromOrigin()) - received).toBeGreaterThanOrEqual(blobBytes)

    const undone = await shoalCli(['configure', 'podman', '--root', root, '--undo'])
    expect(undone.stderr).toBe('')
    expect(await treeSnapshot(root)).toEqual(before)
  })
})
