import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  type Containerd,
  pushImage,
  type Registry,
  removeDir,
  shoalCli,
  startAgent,
  startContainerd,
  startRegistry,
  tempDir,
  treeSnapshot,
} from '../../harness/e2e/index.ts'

// `shoal configure containerd` writes the hosts.toml files; a real containerd then pulls through the agent.
// ctr resolves and fetches on the client side and reads no config_path: it is given the written folder with
// --hosts-dir, exactly as the configure output tells an operator. (The CRI plugin, which does read
// config_path, needs a kubelet; the config.toml edit is checked here byte for byte, and in the unit tests.)
// Each hosts.toml names its registry as `server` over https, which these plain-http registries do not
// speak: a pull that works went through the agent.
describe('shoal configure containerd, then ctr pulls through the agent', () => {
  const cleanup = new Cleanup()
  let named: Registry
  let other: Registry
  let defaultOrigin: Registry
  let agent: Agent
  let containerd: Containerd
  let root: string

  const CONFIG =
    '# this node\'s containerd\nversion = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ""\n'

  beforeAll(async () => {
    named = cleanup.add(await startRegistry(), (r) => r.stop())
    other = cleanup.add(await startRegistry(), (r) => r.stop())
    defaultOrigin = cleanup.add(await startRegistry(), (r) => r.stop())
    agent = cleanup.add(
      await startAgent({ origin: defaultOrigin.url, insecureRegistries: [named.host, other.host] }),
      (a) => a.cleanup(),
    )
    containerd = cleanup.add(await startContainerd(), (c) => c.stop())
    root = cleanup.add(await tempDir('host-root'), removeDir)
    await mkdir(join(root, 'etc/containerd'), { recursive: true })
    await writeFile(join(root, 'etc/containerd/config.toml'), CONFIG)
  })
  afterAll(() => cleanup.run())

  it('pulls a named registry and any other (_default) through the agent; --undo restores the tree', async () => {
    const before = await treeSnapshot(root)
    const args = ['configure', 'containerd', '--root', root, '--registries', named.host, '--mirror', agent.url]
    const first = await shoalCli([...args, '--patch-config'])
    expect(first.stdout).toContain('restart containerd')
    const written = await treeSnapshot(root)
    expect(await readFile(join(root, 'etc/containerd/config.toml'), 'utf8')).toContain(
      'config_path = "/etc/containerd/certs.d"',
    )
    expect((await shoalCli([...args, '--patch-config'])).stdout).toContain('nothing to change')
    expect(await treeSnapshot(root)).toEqual(written)

    const app = cleanup.add(await pushImage(named.url, 'team/app', 'v1', { layers: 2, layerBytes: 1024 * 1024 }), (i) =>
      i.cleanup(),
    )
    const svc = cleanup.add(await pushImage(other.url, 'team/svc', 'v1', { layers: 2, layerBytes: 512 * 1024 }), (i) =>
      i.cleanup(),
    )
    const fromOrigin = () => agent.metric('shoal_bytes_received_total', { source: 'origin' })
    const received = await fromOrigin()
    const hostsDir = join(root, 'etc/containerd/certs.d')

    await containerd.pull(`${named.host}/team/app:v1`, { hostsDir })
    await containerd.pull(`${other.host}/team/svc:v1`, { hostsDir })

    const stored = await containerd.contentDigests()
    for (const d of [app.image.root.digest, ...app.blobDigests, svc.image.root.digest, ...svc.blobDigests]) {
      expect(stored.has(d)).toBe(true)
    }
    for (const d of app.blobDigests) expect((await named.blobGets(d)).count).toBe(1)
    for (const d of svc.blobDigests) expect((await other.blobGets(d)).count).toBe(1)
    expect((await defaultOrigin.blobGets()).count).toBe(0)
    // Every request the registries saw came from the agent, none from containerd itself.
    for (const r of [...(await named.requests()), ...(await other.requests())]) {
      expect(r.userAgent).not.toMatch(/containerd/)
    }
    const blobBytes = [...app.image.blobs, ...svc.image.blobs].reduce((sum, b) => sum + b.size, 0)
    expect((await fromOrigin()) - received).toBeGreaterThanOrEqual(blobBytes)

    const undone = await shoalCli(['configure', 'containerd', '--root', root, '--undo'])
    expect(undone.stderr).toBe('')
    expect(await treeSnapshot(root)).toEqual(before)
  })
})
