/**
 * Mirror foundation benchmark, all in one run against a real docker-registry on 127.0.0.1:
 *
 *   npx node bench/mirror/main.ts [--runs 3] [--out bench/mirror/RESULTS.md]
 *
 * (a) cold pull of a 256 MiB image (4 layers) with `skopeo copy docker://… dir:…`, through a fresh
 *     agent and straight from the origin, runs interleaved;
 * (b) warm blob throughput: a cached 256 MiB blob through the agent against the origin serving the
 *     same blob (undici, best of --runs);
 * (c) the agent's peak RSS (VmHWM) while it serves a 1 GiB blob cold, then warm after a restart over
 *     the same cache (a restart, because VmHWM never goes down).
 *
 * Needs docker-registry and skopeo; when they are missing, test/e2e/setup.sh installs them (as root).
 */
import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  type Agent,
  Cleanup,
  dirBlobs,
  fetchBlob,
  fetchManifest,
  type PushedImage,
  pushImage,
  type Registry,
  removeDir,
  skopeoCopy,
  startAgent,
  startRegistry,
  tempDir,
} from '../../harness/e2e/index.ts'
import { load1, machineInfo, mbPerS, median, memoryBytes, mib, type Transfer, timedGet } from './proc.ts'

const MiB = 1024 * 1024
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEFAULT_OUT = join(REPO_ROOT, 'bench', 'mirror', 'RESULTS.md')
const IMAGE_LAYERS = 4
const IMAGE_LAYER_BYTES = 64 * MiB
const WARM_BLOB_BYTES = 256 * MiB
const RSS_BLOB_BYTES = 1024 * MiB

const started = performance.now()
function log(message: string): void {
  process.stderr.write(`[mirror ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`)
}

function ensureTools(): void {
  const missing = ['docker-registry', 'skopeo'].filter(
    (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0,
  )
  if (missing.length === 0) return
  log(`missing ${missing.join(', ')}: running test/e2e/setup.sh`)
  const r = spawnSync('bash', [join(REPO_ROOT, 'test', 'e2e', 'setup.sh')], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error('test/e2e/setup.sh failed (it installs only as root)')
}

const largest = (img: PushedImage) => img.image.blobs.reduce((a, b) => (b.size > a.size ? b : a))
const imageBytes = (img: PushedImage) => img.image.blobs.reduce((n, b) => n + b.size, 0)

interface ColdPulls {
  readonly directS: number[]
  readonly agentS: number[]
  /** Blob GETs the origin served per agent pull (each blob once is right). */
  readonly originGetsPerAgentPull: number[]
}

/** `skopeo copy` to a fresh dir, checked blob by blob against the pushed image; returns seconds. */
async function skopeoPull(host: string, img: PushedImage): Promise<number> {
  const out = await tempDir('bench-pull')
  try {
    const t0 = performance.now()
    await skopeoCopy(`docker://${host}/${img.name}:${img.tag}`, `dir:${out}`)
    const seconds = (performance.now() - t0) / 1000
    const blobs = await dirBlobs(out)
    const ok = blobs.size === img.blobDigests.size && [...blobs.values()].every((b) => b.computed === b.named)
    if (!ok || ![...img.blobDigests].every((d) => blobs.has(d))) throw new Error(`pull from ${host}: wrong blobs`)
    return seconds
  } finally {
    await removeDir(out)
  }
}

async function coldPulls(origin: Registry, img: PushedImage, runs: number): Promise<ColdPulls> {
  const r: ColdPulls = { directS: [], agentS: [], originGetsPerAgentPull: [] }
  for (let i = 0; i < runs; i++) {
    // Alternate which goes first, so drift on a shared machine hits both alike.
    for (const which of i % 2 === 0 ? ['direct', 'agent'] : ['agent', 'direct']) {
      if (which === 'direct') {
        r.directS.push(await skopeoPull(origin.host, img))
        log(`(a) run ${i + 1}: direct ${r.directS.at(-1)!.toFixed(2)} s`)
        continue
      }
      const agent = await startAgent({ origin: origin.url })
      try {
        await origin.resetLog()
        r.agentS.push(await skopeoPull(agent.host, img))
        r.originGetsPerAgentPull.push((await origin.blobGets()).count)
        log(`(a) run ${i + 1}: agent ${r.agentS.at(-1)!.toFixed(2)} s`)
      } finally {
        await agent.cleanup()
      }
    }
  }
  return r
}

interface WarmThroughput {
  readonly blobBytes: number
  readonly cold: Transfer
  readonly agent: Transfer[]
  readonly origin: Transfer[]
}

async function warmThroughput(origin: Registry, img: PushedImage, runs: number): Promise<WarmThroughput> {
  const blob = largest(img)
  const agent = await startAgent({ origin: origin.url })
  try {
    const path = `/v2/${img.name}/blobs/${blob.digest}`
    // The first GET fills the cache; its last byte waits for the digest check and the commit.
    const cold = await timedGet(`${agent.url}${path}`, blob.size, agent.pid)
    log(`(b) agent cold ${mbPerS(cold).toFixed(0)} MB/s`)
    const r: WarmThroughput = { blobBytes: blob.size, cold, agent: [], origin: [] }
    for (let i = 0; i < runs; i++) {
      for (const which of i % 2 === 0 ? ['agent', 'origin'] : ['origin', 'agent']) {
        if (which === 'agent') r.agent.push(await timedGet(`${agent.url}${path}`, blob.size, agent.pid))
        else r.origin.push(await timedGet(`${origin.url}${path}`, blob.size, origin.daemon.pid))
      }
      const [ag, or] = [mbPerS(r.agent.at(-1)!), mbPerS(r.origin.at(-1)!)]
      log(`(b) run ${i + 1}: agent ${ag.toFixed(0)} MB/s, origin ${or.toFixed(0)} MB/s`)
    }
    return r
  } finally {
    await agent.cleanup()
  }
}

interface RssSample {
  readonly baselineBytes: number
  readonly peakBytes: number
  readonly seconds: number
}

/** Loads the code paths with a manifest and a small blob, then measures one large blob GET. */
async function rssWhileServing(agent: Agent, img: PushedImage): Promise<RssSample> {
  const blob = largest(img)
  const small = img.image.blobs.find((b) => b !== blob)!
  if ((await fetchManifest(agent.url, img.name, img.tag)).status !== 200) throw new Error('manifest GET failed')
  if ((await fetchBlob(agent.url, img.name, small.digest)).status !== 200) throw new Error('small blob GET failed')
  const baselineBytes = await memoryBytes(agent.pid, 'VmRSS')
  const t0 = performance.now()
  // Hashed as it arrives: a consumer slower than the disk is what tests the agent's backpressure.
  const res = await fetchBlob(agent.url, img.name, blob.digest)
  const seconds = (performance.now() - t0) / 1000
  if (res.status !== 200 || res.digest !== blob.digest) throw new Error(`1 GiB blob: ${res.status} ${res.digest}`)
  return { baselineBytes, peakBytes: await memoryBytes(agent.pid, 'VmHWM'), seconds }
}

async function peakRss(origin: Registry, img: PushedImage): Promise<{ cold: RssSample; warm: RssSample }> {
  const dataDir = await tempDir('bench-agent-data')
  try {
    const first = await startAgent({ origin: origin.url, dataDir })
    let cold: RssSample
    try {
      cold = await rssWhileServing(first, img)
    } finally {
      await first.cleanup()
    }
    log(`(c) cold: peak ${mib(cold.peakBytes).toFixed(0)} MiB`)
    const second = await startAgent({ origin: origin.url, dataDir })
    try {
      const warm = await rssWhileServing(second, img)
      log(`(c) warm: peak ${mib(warm.peakBytes).toFixed(0)} MiB`)
      return { cold, warm }
    } finally {
      await second.cleanup()
    }
  } finally {
    await removeDir(dataDir)
  }
}

function report(
  command: string,
  loads: readonly number[],
  imageSize: number,
  a: ColdPulls,
  b: WarmThroughput,
  c: { cold: RssSample; warm: RssSample },
): string {
  const f = (x: number, d = 2) => x.toFixed(d)
  const list = (xs: readonly number[], d = 2) => xs.map((x) => f(x, d)).join(', ')
  const row = (...cells: string[]) => `| ${cells.join(' | ')} |`
  const best = (ts: Transfer[]) => Math.max(...ts.map(mbPerS))
  const bestOf = (ts: Transfer[]) => ts.reduce((x, y) => (mbPerS(y) > mbPerS(x) ? y : x))
  const cpuPerGiB = (t: Transfer) => f((t.serverCpuS / t.bytes) * 1024 ** 3)
  const rss = (s: RssSample) => {
    const growth = f(mib(s.peakBytes - s.baselineBytes), 0)
    const rate = f(RSS_BLOB_BYTES / 1e6 / s.seconds, 0)
    return `${f(mib(s.baselineBytes), 0)} → ${f(mib(s.peakBytes), 0)} MiB (+${growth} MiB), ${rate} MB/s`
  }
  const [agentS, directS] = [median(a.agentS), median(a.directS)]
  const [agentMBs, originMBs] = [best(b.agent), best(b.origin)]
  const pull = `${f(mib(imageSize), 0)} MiB image, ${IMAGE_LAYERS} layers`
  return [
    '# Mirror foundation measurements',
    '',
    'Generated by `bench/mirror/main.ts`; rerun with:',
    '',
    `    ${command}`,
    '',
    ...machineInfo().map((l) => `- ${l}`),
    `- ${new Date().toISOString()}; origin: docker-registry (filesystem storage, no auth) on 127.0.0.1`,
    `- 1-minute load average at start and end: ${list(loads)} (the machine may be shared)`,
    '- MB = 10^6 bytes, MiB = 2^20 bytes',
    '',
    row('measure', 'agent', 'origin direct', 'agent / origin'),
    row('---', '---:', '---:', '---:'),
    row(
      `(a) cold pull, ${pull}, skopeo to dir: (median of ${a.agentS.length}, s)`,
      f(agentS),
      f(directS),
      f(agentS / directS),
    ),
    row(
      `(b) warm ${f(mib(b.blobBytes), 0)} MiB blob, undici (best of ${b.agent.length}, MB/s)`,
      f(agentMBs, 0),
      f(originMBs, 0),
      f(agentMBs / originMBs),
    ),
    row('(b) server CPU s per GiB served, best run', cpuPerGiB(bestOf(b.agent)), cpuPerGiB(bestOf(b.origin)), ''),
    '',
    '(c) agent RSS serving a 1 GiB blob (baseline → VmHWM, client hashing as it reads):',
    `- cold (fetched from the origin while served): ${rss(c.cold)}`,
    `- warm (from the cache, after a restart over the same data dir): ${rss(c.warm)}`,
    '',
    'Raw runs:',
    `- (a) direct s: ${list(a.directS)}; agent s: ${list(a.agentS)}`,
    `- (a) origin blob GETs per agent pull: ${a.originGetsPerAgentPull.join(', ')}`,
    `- (b) agent cold fill: ${f(mbPerS(b.cold), 0)} MB/s`,
    `- (b) warm agent MB/s: ${list(b.agent.map(mbPerS), 0)}; origin MB/s: ${list(b.origin.map(mbPerS), 0)}`,
    '',
  ].join('\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, out: { type: 'string', default: DEFAULT_OUT } },
  })
  const runs = Number(values.runs)
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error('--runs wants a positive integer')
  ensureTools()
  const loadAtStart = load1()
  const cleanup = new Cleanup()
  try {
    const origin = cleanup.add(await startRegistry(), (r) => r.stop())
    log(`docker-registry at ${origin.url}; generating and pushing images`)
    const push = (name: string, layers: number, layerBytes: number) =>
      pushImage(origin.url, name, 'v1', { layers, layerBytes, seed: `bench-mirror-${name}` }).then((i) =>
        cleanup.add(i, (x) => x.cleanup()),
      )
    const image = await push('bench/image', IMAGE_LAYERS, IMAGE_LAYER_BYTES)
    const warm = await push('bench/blob256', 1, WARM_BLOB_BYTES)
    const big = await push('bench/blob1g', 1, RSS_BLOB_BYTES)
    log('images pushed')

    const a = await coldPulls(origin, image, runs)
    const b = await warmThroughput(origin, warm, runs)
    const c = await peakRss(origin, big)

    const args = process.argv.slice(2)
    const command = ['npx node bench/mirror/main.ts', ...args].join(' ')
    const text = report(command, [loadAtStart, load1()], imageBytes(image), a, b, c)
    process.stdout.write(`\n${text}`)
    await writeFile(values.out, text)
    log(`wrote ${relative(process.cwd(), values.out)}`)
  } finally {
    await cleanup.run()
  }
}

await main()
