/**
 * The origin's bytes per node beyond the blobs, measured: a real docker-registry (distribution) behind a counting
 * TCP proxy (the registry every Shoal process is pointed at: one name, so the seeder pulls what agents ask it to),
 * a seeder and two agents on real libp2p, the sample image (config + 4 layers, as the simulator's image) pulled
 * through agent A and then, once A is done, through agent B, the way a runtime pulls (manifest by tag, then every
 * blob). A's pull includes the seeder's first pull of every blob; B's is what every further node costs.
 *
 *   npx node bench/manifests/main.ts [--layers 4] [--preheat]
 *
 * The proxy counts every byte the registry sent during each pull (status lines, headers, bodies). The registry's
 * own log lists each request with its body bytes, so the blob bodies are told apart from the rest. Needs
 * docker-registry (test/e2e/setup.sh installs it as root).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadAgentConfig } from '../../agent/config.ts'
import { type RunningAgent, startAgent } from '../../agent/main.ts'
import { pushImage, startRegistry } from '../../harness/e2e/index.ts'
import { createLogger } from '../../shared/log/index.ts'
import { pullImage } from '../../shared/sample/pull.ts'
import { withPeerId } from '../../shared/swarm/index.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { type RunningSeeder, startSeeder } from '../../seeder/main.ts'

interface Counted {
  readonly url: string
  readonly host: string
  /** Bytes the registry sent through this proxy. */
  down: number
  /** Bytes sent to the registry through this proxy. */
  up: number
  readonly server: Server
}

/** A TCP proxy to `target` counting the bytes each way. */
async function countingProxy(target: { host: string; port: number }): Promise<Counted> {
  const c = { down: 0, up: 0 } as Counted
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    client.on('data', (d: Buffer) => (c.up += d.length))
    upstream.on('data', (d: Buffer) => (c.down += d.length))
    client.pipe(upstream)
    upstream.pipe(client)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return Object.assign(c, { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, server })
}

/** Bytes of the registry's whole response (status line, headers, body) to one request on a fresh connection. */
async function responseBytes(target: { host: string; port: number }, method: string, path: string): Promise<number> {
  const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
  return await new Promise((resolve, reject) => {
    const socket = connect(target.port, target.host)
    let n = 0
    socket.on('data', (d: Buffer) => (n += d.length))
    socket.on('error', reject)
    socket.on('end', () => resolve(n))
    socket.write(
      `${method} ${path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nAccept: ${accept}\r\nConnection: close\r\n\r\n`,
    )
  })
}

const { values } = parseArgs({
  options: { layers: { type: 'string', default: '4' }, preheat: { type: 'boolean', default: false } },
})
const layers = Number(values.layers)
const log = createLogger({ level: 'silent' })
const dir = await mkdtemp(join(tmpdir(), 'shoal-manifest-bytes-'))
const registry = await startRegistry()
const stops: (() => Promise<unknown>)[] = [() => registry.stop(), () => rm(dir, { recursive: true, force: true })]
try {
  const pushed = await pushImage(registry.url, 'demo/app', 'v1', { layers, layerBytes: 1024 * 1024, seed: 'bytes' })
  const target = new URL(registry.url)
  const proxyFor = async () => {
    const p = await countingProxy({ host: target.hostname, port: Number(target.port) })
    stops.push(() => new Promise((r) => p.server.close(r)))
    return p
  }
  const proxy = await proxyFor()
  const seederProxy = proxy
  const seeder: RunningSeeder = await startSeeder(
    loadSeederConfig({
      argv: [
        ...['--origin', seederProxy.url, '--data', join(dir, 'seeder'), '--p2p-listen', '/ip4/127.0.0.1/tcp/0'],
        ...['--api-listen', '127.0.0.1:0', '--insecure-registry', seederProxy.host],
      ],
      env: {},
      readFile: () => '',
    }),
    { log },
  )
  stops.unshift(() => seeder.stop())
  const seederAddr = withPeerId(
    seeder.multiaddrs.find((m) => m.includes('/tcp/'))!,
    seeder.peerId,
  )
  if (values.preheat) {
    const { id } = seeder.preheater.submit('demo/app:v1')
    while (!['done', 'failed'].includes(seeder.preheater.get(id)?.state ?? 'failed'))
      await new Promise((r) => setTimeout(r, 100))
  }
  const agentAt = async (i: number, extra: string[]): Promise<{ agent: RunningAgent; proxy: Counted }> => {
    const agent = await startAgent(
      loadAgentConfig({
        argv: [
          ...['--listen', '127.0.0.1:0', '--origin', proxy.url, '--data', join(dir, `agent-${i}`)],
          ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--seeder', seederAddr, '--insecure-registry', proxy.host],
          ...extra,
        ],
        env: {},
        readFile: () => '',
      }),
      { log },
    )
    stops.unshift(() => agent.stop())
    return { agent, proxy }
  }
  const blobBytes = pushed.image.blobs.reduce((n, b) => n + b.size, 0)
  const rows: string[] = []
  const measure = async (name: string, a: { agent: RunningAgent; proxy: Counted }) => {
    await registry.resetLog()
    const down0 = a.proxy.down
    const up0 = a.proxy.up
    await pullImage(a.agent.url, 'demo/app', 'v1')
    // Connections are kept alive: wait until every response the registry logged has also crossed the proxy.
    await new Promise((r) => setTimeout(r, 500))
    const requests = await registry.requests()
    const blobBodies = requests
      .filter((r) => r.method === 'GET' && /\/blobs\//.test(r.path))
      .reduce((n, r) => n + r.written, 0)
    const down = a.proxy.down - down0
    const lines = requests.map(
      (r) => `${r.method} ${r.path.replace(/sha256:[0-9a-f]{64}/, 'sha256:…')} ${r.status} ${r.written}`,
    )
    rows.push(
      `| ${name} | ${down} | ${blobBodies} | **${down - blobBodies}** | ${a.proxy.up - up0} | ${lines.join('<br>')} |`,
    )
  }
  const a = await agentAt(0, [])
  await measure('agent A (first)', a)
  const b = await agentAt(1, [
    '--bootstrap',
    withPeerId(
      a.agent.multiaddrs.find((m) => m.includes('/tcp/'))!,
      a.agent.peerId!,
    ),
  ])
  // Its search asks connected peers: let it connect to A (and the seeder) first.
  for (let i = 0; i < 100 && (b.agent.metrics.sources.peers?.() ?? 0) < 2; i++)
    await new Promise((r) => setTimeout(r, 100))
  await measure('agent B (second)', b)
  console.log(
    `image: ${layers} layers + config, ${blobBytes} blob bytes, manifest ${pushed.image.root.bytes.byteLength} bytes${values.preheat ? ', preheated' : ''}\n`,
  )
  console.log(
    "| pull through | bytes from the origin | of which blob bodies | beyond the blobs | bytes to the origin | the origin's log (method path status body-bytes) |",
  )
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const r of rows) console.log(r)
  const t = { host: target.hostname, port: Number(target.port) }
  const root = pushed.image.root
  const one = (method: string, path: string) => responseBytes(t, method, path)
  const blobHeads = await Promise.all(pushed.image.blobs.map((x) => one('HEAD', `/v2/demo/app/blobs/${x.digest}`)))
  console.log(
    `\none response each, whole (status line, headers, body): HEAD manifest by tag ${await one('HEAD', '/v2/demo/app/manifests/v1')} B, ` +
      `GET manifest by tag ${await one('GET', '/v2/demo/app/manifests/v1')} B, ` +
      `GET manifest by digest ${await one('GET', `/v2/demo/app/manifests/${root.digest}`)} B, ` +
      `HEAD blob ${blobHeads.join(' / ')} B (sum ${blobHeads.reduce((a, x) => a + x, 0)} B)`,
  )
} finally {
  for (const s of stops) await s().catch(() => {})
}
