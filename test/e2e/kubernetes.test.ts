import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  Cleanup,
  Daemon,
  freePort,
  type PushedImage,
  pushImage,
  type Registry,
  removeDir,
  runOk,
  startContainerd,
  startRegistry,
  tempDir,
  waitForHttp,
} from '../../harness/e2e/index.ts'
import { type K8sObject, parseManifests, renderedBody, schemaErrors } from '../deploy/manifests.ts'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const K8S = join(REPO, 'deploy', 'kubernetes')
const KUBECTL = '/usr/bin/kubectl'
const SHOAL_BIN = join(REPO, 'bin', 'shoal.js')
/** The image's entry point, as the manifests spell it; here it is this checkout run by this Node 24. */
const IMAGE_SHOAL = ['node', '/opt/shoal/bin/shoal.js']

interface Container {
  name: string
  command?: string[]
  args?: string[]
  env?: { name: string; value?: string; valueFrom?: unknown }[]
  envFrom?: { configMapRef?: { name: string } }[]
  volumeMounts?: { name: string; mountPath: string }[]
}
interface PodSpec {
  initContainers?: Container[]
  containers: Container[]
  volumes: {
    name: string
    hostPath?: { path: string }
    secret?: { secretName: string }
    emptyDir?: object
    configMap?: { name: string }
  }[]
}

const kustomize = async (dir: string) => (await runOk(KUBECTL, ['kustomize', dir])).stdout

describe('deploy/kubernetes rendered by the real kubectl kustomize', () => {
  it('base renders to exactly the checked-in shoal.yaml', async () => {
    const checkedIn = renderedBody(await readFile(join(K8S, 'shoal.yaml'), 'utf8'))
    expect(await kustomize(join(K8S, 'base'))).toBe(checkedIn)
  })
})

describe("the DaemonSet's command lines on this machine, against a real containerd", () => {
  const cleanup = new Cleanup()
  let work: string
  let origin: Registry
  let app: PushedImage
  let rendered: K8sObject[]

  beforeAll(async () => {
    work = cleanup.add(await tempDir('k8s'), removeDir)
    await cp(K8S, join(work, 'kubernetes'), { recursive: true })
    // The README's first step: keys for overlays/default, written by `shoal keygen` through keygen.sh.
    await runOk('sh', [join(work, 'kubernetes', 'keygen.sh')], {
      env: { SHOAL: `${process.execPath} ${SHOAL_BIN}` },
    })
    origin = cleanup.add(await startRegistry(), (r) => r.stop())
    app = cleanup.add(await pushImage(origin.url, 'team/app', 'v1', { layers: 2, layerBytes: 2 * 1024 * 1024 }), (i) =>
      i.cleanup(),
    )
  })
  afterAll(() => cleanup.run())

  it('every overlay renders, and every object validates against the Kubernetes schemas', async () => {
    for (const overlay of ['default', 'sites', 'monitoring']) {
      const objects = parseManifests(await kustomize(join(work, 'kubernetes', 'overlays', overlay)))
      expect(schemaErrors(objects), overlay).toEqual([])
      if (overlay === 'default') rendered = objects
      if (overlay === 'sites') {
        const ds = objects.find((o) => o.kind === 'DaemonSet')!
        const spec = (ds['spec'] as { template: { spec: PodSpec } }).template.spec
        expect(spec.initContainers?.map((c) => c.name)).toContain('site')
        expect(objects.some((o) => o.kind === 'ClusterRole')).toBe(true)
      }
    }
  })

  it('configure containerd, start the seeder and the agent as the manifests say; containerd pulls through it', async () => {
    const find = (kind: string, name: string) => rendered.find((o) => o.kind === kind && o.metadata.name === name)!
    const byName = (kind: string, name: string) =>
      rendered.find((o) => o.kind === kind && o.metadata.name.replace(/-[a-z0-9]{10}$/, '') === name)!
    const node = join(work, 'node')
    // Every volume of a pod becomes a directory here: hostPath under a fake node root, Secrets and
    // ConfigMaps written out from the rendered objects, emptyDirs empty.
    const mounts = async (spec: PodSpec, c: Container): Promise<[string, string][]> => {
      const out: [string, string][] = []
      for (const m of c.volumeMounts ?? []) {
        // No volume of that name: a StatefulSet's volumeClaimTemplate (a PersistentVolumeClaim), an empty dir here.
        const v = spec.volumes.find((x) => x.name === m.name) ?? { name: m.name, emptyDir: {} }
        let dir: string
        if (v.hostPath !== undefined) dir = join(node, v.hostPath.path)
        else {
          dir = join(work, 'volumes', `${c.name}-${m.name}`)
          const source = v.secret
            ? find('Secret', v.secret.secretName)
            : v.configMap
              ? find('ConfigMap', v.configMap.name)
              : undefined
          await mkdir(dir, { recursive: true })
          const data = (source?.['data'] ?? {}) as Record<string, string>
          for (const [file, value] of Object.entries(data))
            await writeFile(join(dir, file), v.secret ? Buffer.from(value, 'base64') : value, { mode: 0o600 })
        }
        await mkdir(dir, { recursive: true })
        out.push([m.mountPath, dir])
        // A host path mounted under a prefix (/host/etc/containerd ← /etc/containerd) makes the prefix the node's root.
        if (v.hostPath !== undefined && m.mountPath.endsWith(v.hostPath.path) && m.mountPath !== v.hostPath.path)
          out.push([m.mountPath.slice(0, -v.hostPath.path.length), node])
      }
      return out.sort((a, b) => b[0].length - a[0].length)
    }
    // The container's exact command line; paths inside a mount are rewritten to where the mount is here.
    const commandLine = async (spec: PodSpec, c: Container, vars: Record<string, string> = {}) => {
      const m = await mounts(spec, c)
      const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) => {
        const expanded = a.replace(/\$\((\w+)\)/g, (_, k: string) => vars[k] ?? '')
        const hit = m.find(([at]) => expanded === at || expanded.startsWith(`${at}/`))
        return hit === undefined ? expanded : hit[1] + expanded.slice(hit[0].length)
      })
      if (argv[0] !== IMAGE_SHOAL[0]) return argv
      expect(argv[1]).toBe(IMAGE_SHOAL[1])
      return [process.execPath, SHOAL_BIN, ...argv.slice(2)]
    }
    const env = (c: Container) => {
      const out: Record<string, string> = {}
      for (const e of c.envFrom ?? []) Object.assign(out, find('ConfigMap', e.configMapRef!.name)['data'])
      return out
    }
    // What differs between a cluster and this machine, as environment (never a flag of the manifests):
    // the origin is the local registry, and the seeder's cluster DNS name is this host.
    const local = { SHOAL_ORIGIN: origin.url, SHOAL_INSECURE_REGISTRY: origin.host }

    const ds = (find('DaemonSet', 'shoal-agent')['spec'] as { template: { spec: PodSpec } }).template.spec
    for (const init of ds.initContainers ?? []) {
      const [cmd, ...args] = await commandLine(ds, init)
      await runOk(cmd!, args)
    }
    const hosts = await readFile(join(node, 'etc/containerd/certs.d/_default/hosts.toml'), 'utf8')
    expect(hosts).toContain('http://127.0.0.1:5000')

    const sts = (byName('StatefulSet', 'shoal-seeder')['spec'] as { template: { spec: PodSpec } }).template.spec
    const seederArgv = await commandLine(sts, sts.containers[0]!, { POD_NAME: 'shoal-seeder-0' })
    // In a cluster the seeder has its own network namespace; here its bulk port would clash with the agent's.
    const bulk = seederArgv.indexOf('--bulk-listen')
    seederArgv[bulk + 1] = `0.0.0.0:${await freePort()}`
    const seeder = cleanup.add(
      new Daemon('seeder', seederArgv[0]!, seederArgv.slice(1), { cwd: REPO, env: { ...process.env, ...local } }),
      (d) => d.stop().then(() => {}),
    )
    await waitForHttp('http://127.0.0.1:7000/readyz', { daemon: seeder })

    const agentC = ds.containers[0]!
    const agentArgv = await commandLine(ds, agentC)
    const seederAddr = env(agentC)['SHOAL_SEEDER']!.replace(
      '/dns4/shoal-seeder-0.shoal-seeder.shoal.svc.cluster.local/',
      '/ip4/127.0.0.1/',
    )
    const agent = cleanup.add(
      new Daemon('agent', agentArgv[0]!, agentArgv.slice(1), {
        cwd: REPO,
        env: { ...process.env, ...env(agentC), ...local, SHOAL_SEEDER: seederAddr },
      }),
      (d) => d.stop().then(() => {}),
    )
    await waitForHttp('http://127.0.0.1:5001/readyz', { daemon: agent })

    const containerd = cleanup.add(await startContainerd(), (c) => c.stop())
    await containerd.pull(`${origin.host}/team/app:v1`, { hostsDir: join(node, 'etc/containerd/certs.d') })
    const have = await containerd.contentDigests()
    for (const d of app.blobDigests) expect(have.has(d)).toBe(true)
    const readStatus = async () =>
      (await (await fetch('http://127.0.0.1:5001/status')).json()) as {
        recent: { digest: string; ok: boolean }[]
        peerList: { seeder: boolean }[]
      }
    // Every layer went through the agent (the mirror), and the agent found the seeder the manifests name. A pull is
    // listed once its blob is durable, a moment after the client has its last byte.
    await expect
      .poll(async () => (await readStatus()).recent.map((r) => r.digest))
      .toEqual(expect.arrayContaining([...app.blobDigests]))
    expect((await readStatus()).peerList.some((p) => p.seeder)).toBe(true)
  })
})
