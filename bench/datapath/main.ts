/**
 * The data path, side by side in one run on loopback: a real docker-registry origin, the Node floor (a minimal
 * `node:http` file server over the same blob file), and Shoal agents and a seeder started as a user starts them.
 *
 *   npm run bench:datapath -- [--quick] [--runs N] [--cpu-prof] [--heap-snapshot] [--compare GIT-REF] [--no-swarm]
 *                             [--swarm-only] [--title TEXT]
 *
 * Rows (client: `curl -o /dev/null`): origin direct; floor; warm agent (cached blob); cold plain mirror (origin →
 * agent → client, no swarm); cold through the swarm (origin → seeder → agent → client); relay (agent B ← agent A,
 * the seeder only asked for what no peer holds); 16 concurrent clients on the warm blob, against the agent, the
 * floor and the origin. Per row: throughput as a ratio to the origin and to the floor of the same run, CPU seconds
 * per GiB of every process on the path, its peak RSS, time to first byte; idle RSS of the agents.
 * `--compare REF` adds the warm, cold plain mirror and swarm rows for the tree at REF (an older commit), in the same
 * run: a before/after.
 * `--swarm-only` runs the references and the swarm rows alone (a quicker before/after of a swarm change).
 * Appends a section to bench/datapath/RESULTS.md and writes the JSON under bench/datapath/results/.
 */
import { execFileSync } from 'node:child_process'
import { appendFile, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import {
  Cleanup,
  type PushedImage,
  pushImage,
  type Registry,
  removeDir,
  startRegistry,
  tempDir,
} from '../../harness/e2e/index.ts'
import { curlGet } from './curl.ts'
import { memoryBytes, ProcessWatch } from './proc.ts'
import { type Clients, markdownSection, type RowRun, type RunResult, summarize, idleSummary } from './report.ts'
import { REPO_ROOT, type ShoalProcess, startAgent, startFloor, startSeeder } from './shoal.ts'

const MiB = 1024 * 1024
const CONCURRENT_CLIENTS = 16
/** Before the idle RSS is read: startup work (DHT bootstrap, first reprovide) settles. */
const IDLE_SETTLE_MS = 5_000
/** After the first agent holds the blob: its provider record reaches the DHT before agent B looks. */
const PROVIDE_SETTLE_MS = 3_000

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string', default: '1' },
    'cpu-prof': { type: 'boolean', default: false },
    'heap-snapshot': { type: 'boolean', default: false },
    compare: { type: 'string' },
    title: { type: 'string' },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'datapath', 'RESULTS.md') },
    'no-swarm': { type: 'boolean', default: false },
    'swarm-only': { type: 'boolean', default: false },
  },
})
if (args['no-swarm'] && args['swarm-only']) throw new Error('--no-swarm and --swarm-only exclude each other')
const RUNS = Number(args.runs)
if (!Number.isSafeInteger(RUNS) || RUNS < 1) throw new Error('--runs wants a positive integer')
const LAYER_BYTES = (args.quick ? 256 : 1024) * MiB

const started = performance.now()
function log(message: string): void {
  process.stderr.write(`[datapath ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`)
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** CLOCK_MONOTONIC in µs: the clock V8 stamps CPU profile samples with, in every process of the machine. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

interface Watched {
  readonly role: string
  readonly shoal: boolean
  readonly pid: number
}

/** One row: every URL fetched at once by its own curl; CPU and peak RSS of each watched process over the row. */
async function measure(
  id: string,
  label: string,
  clients: Clients,
  urls: readonly string[],
  expectBytes: number,
  watched: readonly Watched[],
): Promise<RowRun> {
  const watches = watched.map((w) => ({ w, watch: new ProcessWatch(w.pid) }))
  for (const x of watches) await x.watch.begin()
  const t0 = performance.now()
  const startUs = monotonicUs()
  const results = await Promise.all(urls.map((u) => curlGet(u, expectBytes)))
  const endUs = monotonicUs()
  const wall = (performance.now() - t0) / 1000
  const costs = []
  for (const { w, watch } of watches) costs.push({ role: w.role, shoal: w.shoal, ...(await watch.end()) })
  const ttfb = results.map((r) => r.ttfbS).sort((a, b) => a - b)
  const row: RowRun = {
    id,
    label,
    clients,
    bytes: results.reduce((n, r) => n + r.bytes, 0),
    // One client: curl's own clock; several: from the first spawn to the last byte.
    seconds: results.length === 1 ? results[0]!.totalS : wall,
    ttfbS: ttfb[ttfb.length >> 1]!,
    processes: costs,
    window: { startUs, endUs },
  }
  log(`  ${label}: ${(row.bytes / 1e6 / row.seconds).toFixed(0)} MB/s`)
  return row
}

interface Setup {
  readonly origin: Registry
  readonly originPid: number
  readonly image: PushedImage
  readonly blobUrlPath: string
  readonly blobBytes: number
  readonly floor: { url: string; pid: number }
  /** Trees to run agents from: this one, and the `--compare` one. */
  readonly trees: readonly { readonly name: string; readonly dir: string }[]
  readonly profileDir: string | undefined
  /** Where the idle swarm agent writes its heap snapshot (`--heap-snapshot`). */
  readonly heapDir: string | undefined
}

async function warmRows(s: Setup, run: number, tree: { name: string; dir: string }, dataDir: string) {
  const suffix = tree.name === 'this tree' ? '' : ` @ ${tree.name}`
  const agent = await startAgent(
    `run ${run} agent warm${suffix}`,
    { origin: s.origin.url, dataDir },
    { tree: tree.dir, ...(s.profileDir === undefined ? {} : { profileDir: s.profileDir }) },
  )
  const rows: RowRun[] = []
  const idle: { role: string; rssBytes: number }[] = []
  let profile: string[]
  try {
    await sleep(IDLE_SETTLE_MS)
    idle.push({ role: `agent, plain mirror${suffix}`, rssBytes: await memoryBytes(agent.pid, 'VmRSS') })
    const me = [{ role: 'agent', shoal: true, pid: agent.pid }]
    const url = `${agent.url}${s.blobUrlPath}`
    rows.push(await measure(`warm${suffix}`, `warm agent${suffix}`, 'single', [url], s.blobBytes, me))
    const urls = Array.from({ length: CONCURRENT_CLIENTS }, () => url)
    rows.push(await measure(`warm-16${suffix}`, `warm agent, 16 clients${suffix}`, 'concurrent', urls, s.blobBytes, me))
  } finally {
    profile = await agent.stop(rows)
  }
  return { rows, idle, profile }
}

async function oneRun(s: Setup, run: number): Promise<{ result: RunResult; profiles: string[] }> {
  const rows: RowRun[] = []
  const idle: { role: string; rssBytes: number }[] = []
  const profiles: string[] = []
  const launch = { tree: REPO_ROOT, ...(s.profileDir === undefined ? {} : { profileDir: s.profileDir }) }
  const originUrl = `${s.origin.url}${s.blobUrlPath}`
  const floorUrl = s.floor.url
  const origin = { role: 'origin (distribution)', shoal: false, pid: s.originPid }
  const floor = { role: 'floor (node:http)', shoal: false, pid: s.floor.pid }
  const size = s.blobBytes
  const dirs = new Cleanup()
  try {
    // Cold plain mirror: a fresh agent fills its cache from the origin while it serves the client. With
    // `--compare`, the other tree's agent does the same into a cache of its own, in the same run (order flipped
    // every run); this tree's cache is the one the warm rows then read.
    const plainData = dirs.add(await tempDir('datapath-plain'), removeDir)
    const mirrorTrees = args['swarm-only'] ? [] : s.trees
    for (const tree of run % 2 === 1 ? mirrorTrees : [...mirrorTrees].reverse()) {
      const suffix = tree.name === 'this tree' ? '' : ` @ ${tree.name}`
      const dataDir = suffix === '' ? plainData : dirs.add(await tempDir('datapath-plain'), removeDir)
      const cold = await startAgent(
        `run ${run} agent cold plain mirror${suffix}`,
        { origin: s.origin.url, dataDir },
        { ...launch, tree: tree.dir },
      )
      const mine: RowRun[] = []
      try {
        const me = [{ role: 'agent', shoal: true, pid: cold.pid }]
        const url = `${cold.url}${s.blobUrlPath}`
        mine.push(await measure(`cold-mirror${suffix}`, `cold plain mirror${suffix}`, 'single', [url], size, me))
        rows.push(...mine)
      } finally {
        profiles.push(...(await cold.stop(mine)))
      }
    }

    // References, single client; the order flips every run so drift on a shared machine hits both alike.
    const refs = [
      () => measure('origin', 'origin direct', 'single', [originUrl], size, [origin]),
      () => measure('floor', 'Node floor', 'single', [floorUrl], size, [floor]),
    ]
    for (const r of run % 2 === 1 ? refs : refs.reverse()) rows.push(await r())
    const trees = run % 2 === 1 ? s.trees : [...s.trees].reverse()
    if (!args['swarm-only']) {
      for (const tree of trees) {
        const w = await warmRows(s, run, tree, plainData)
        rows.push(...w.rows)
        idle.push(...w.idle)
        profiles.push(...w.profile)
      }
      const many = (url: string) => Array.from({ length: CONCURRENT_CLIENTS }, () => url)
      rows.push(await measure('floor-16', 'Node floor, 16 clients', 'concurrent', many(floorUrl), size, [floor]))
      rows.push(await measure('origin-16', 'origin direct, 16 clients', 'concurrent', many(originUrl), size, [origin]))
    }

    if (!args['no-swarm']) {
      // Each tree gets its own seeder and agents; the order flips every run, as for the warm rows.
      for (const tree of trees) {
        const swarm = await swarmRows(s, run, { ...launch, tree: tree.dir }, tree.name, dirs)
        rows.push(...swarm.rows)
        idle.push(...swarm.idle)
        profiles.push(...swarm.profiles)
      }
    }
  } finally {
    await dirs.run()
  }
  // Reference rows first in the table.
  const order = ['origin', 'floor', 'warm', 'origin-16', 'floor-16', 'warm-16', 'cold-mirror', 'cold-seeder', 'relay']
  const rank = (id: string) => {
    const i = order.indexOf(id.split(' @ ')[0]!)
    return i === -1 ? order.length : i
  }
  rows.sort((a, b) => rank(a.id) - rank(b.id))
  return { result: { rows, idle }, profiles }
}

async function swarmRows(
  s: Setup,
  run: number,
  launch: { tree: string; profileDir?: string },
  treeName: string,
  dirs: Cleanup,
): Promise<{ rows: RowRun[]; idle: { role: string; rssBytes: number }[]; profiles: string[] }> {
  const suffix = treeName === 'this tree' ? '' : ` @ ${treeName}`
  const rows: RowRun[] = []
  const idle: { role: string; rssBytes: number }[] = []
  const profiles: string[] = []
  const size = s.blobBytes
  const procs: ShoalProcess[] = []
  let relayAgent: ShoalProcess | undefined
  try {
    const seeder = await startSeeder(
      `run ${run} seeder${suffix}`,
      { origin: s.origin.url, dataDir: dirs.add(await tempDir('datapath-seeder'), removeDir) },
      launch,
    )
    procs.push(seeder)
    const agent = async (name: string) => {
      const dataDir = dirs.add(await tempDir('datapath-agent'), removeDir)
      const heap = name === 'agent A' && suffix === '' && s.heapDir !== undefined ? { heapSnapshotDir: s.heapDir } : {}
      const p = await startAgent(
        `run ${run} ${name}${suffix}`,
        { origin: s.origin.url, dataDir, seeder: seeder.multiaddr },
        { ...launch, ...heap },
      )
      procs.push(p)
      return p
    }
    const a = await agent('agent A')
    const b = await agent('agent B')
    relayAgent = b
    await sleep(IDLE_SETTLE_MS)
    idle.push({ role: `agent, swarm on (a seeder configured)${suffix}`, rssBytes: await memoryBytes(a.pid, 'VmRSS') })
    idle.push({ role: `seeder${suffix}`, rssBytes: await memoryBytes(seeder.pid, 'VmRSS') })
    if (s.heapDir !== undefined && run === 1 && suffix === '') profiles.push(...(await a.heapSnapshot()))
    const sd = { role: 'seeder', shoal: true, pid: seeder.pid }
    const cold = await measure(
      `cold-seeder${suffix}`,
      `cold via seeder → agent${suffix}`,
      'single',
      [`${a.url}${s.blobUrlPath}`],
      size,
      [{ role: 'agent', shoal: true, pid: a.pid }, sd],
    )
    rows.push({ ...cold, note: `agent A's chunks by path: ${chunkPaths(await agentStatus(a.url))}` })
    await sleep(PROVIDE_SETTLE_MS)
    const relay = await measure(
      `relay${suffix}`,
      `relay agent A → agent B${suffix}`,
      'single',
      [`${b.url}${s.blobUrlPath}`],
      size,
      [{ role: 'receiver B', shoal: true, pid: b.pid }, { role: 'sender A', shoal: true, pid: a.pid }, sd],
    )
    const status = await agentStatus(b.url)
    const by = Object.entries(status.bytes ?? {})
      .map(([k, v]) => `${k} ${(v / MiB).toFixed(0)} MiB`)
      .join(', ')
    rows.push({ ...relay, note: `agent B's bytes by source: ${by}; its chunks by path: ${chunkPaths(status)}` })
  } finally {
    // Each process's profile cut to the rows it served in (agent B only exists for the relay).
    for (const p of procs.reverse()) profiles.push(...(await p.stop(p === relayAgent ? rows.slice(1) : rows)))
  }
  return { rows, idle, profiles }
}

interface AgentStatus {
  readonly bytes?: Record<string, number>
  readonly chunks?: Record<string, number>
}

async function agentStatus(url: string): Promise<AgentStatus> {
  return (await (await fetch(`${url}/status`)).json()) as AgentStatus
}

/** Chunks received over the bulk (HTTPS) path and over libp2p streams, and bulk attempts that fell back. */
function chunkPaths(status: AgentStatus): string {
  return Object.entries(status.chunks ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')
}

/** An older commit's tree, to run its agent beside this one's: `git archive`, sharing this tree's node_modules. */
async function checkoutTree(ref: string, cleanup: Cleanup): Promise<{ name: string; dir: string }> {
  const dir = cleanup.add(await tempDir('datapath-tree'), removeDir)
  const sha = execFileSync('git', ['rev-parse', '--short', ref], { cwd: REPO_ROOT, encoding: 'utf8' }).trim()
  execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C "${dir}"`], { cwd: REPO_ROOT })
  await symlink(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'))
  return { name: `${ref} (${sha})`, dir }
}

function facts(s: Setup, loads: readonly number[]): string[] {
  const version = (cmd: string, a: string[]) => {
    try {
      return execFileSync(cmd, a, { encoding: 'utf8' }).trim().split('\n')[0]!
    } catch {
      return 'unknown'
    }
  }
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim()
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'agent', 'shared', 'seeder'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  }).trim()
  return [
    `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Linux ${release()}`,
    `Node ${process.version}; ${version('docker-registry', ['--version'])}; ${version('curl', ['--version'])}`,
    `tree ${head}${dirty === '' ? '' : ' with uncommitted changes'}${s.trees.length > 1 ? `; compared with ${s.trees[1]!.name}` : ''}`,
    `blob: ${(s.blobBytes / MiB).toFixed(0)} MiB incompressible layer; client \`curl -o /dev/null\`; ${CONCURRENT_CLIENTS} clients in the concurrent rows (bytes are their sum)`,
    `1-minute load average at start and end: ${loads.map((l) => l.toFixed(2)).join(', ')} (a shared 2-core machine: read ratios, not absolutes)`,
    'MB = 10^6 bytes; CPU s per GiB = process utime + stime over the row / GiB delivered to the clients; peak RSS = VmHWM over the row (reset with clear_refs)',
    ...(s.profileDir === undefined
      ? []
      : ['processes ran under `node --cpu-prof` (slower: compare rows of this run only)']),
  ]
}

async function main(): Promise<void> {
  const cleanup = new Cleanup()
  const loads = [loadavg()[0]!]
  try {
    const origin = cleanup.add(await startRegistry(), (r) => r.stop())
    log(`docker-registry at ${origin.url}; generating and pushing a ${(LAYER_BYTES / MiB).toFixed(0)} MiB layer`)
    const image = cleanup.add(
      await pushImage(origin.url, 'bench/datapath', 'v1', {
        layers: 1,
        layerBytes: LAYER_BYTES,
        seed: 'bench-datapath',
      }),
      (i) => i.cleanup(),
    )
    const blob = image.image.blobs.reduce((a, b) => (b.size > a.size ? b : a))
    const hex = blob.digest.slice('sha256:'.length)
    const file = join(origin.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
    if ((await stat(file)).size !== blob.size) throw new Error(`${file} is not the pushed blob`)
    const floor = cleanup.add(await startFloor(file), (f) => f.stop())
    const trees = [{ name: 'this tree', dir: REPO_ROOT }]
    if (args.compare !== undefined) trees.push(await checkoutTree(args.compare, cleanup))
    const profileDir = args['cpu-prof'] ? await tempDir('datapath-profiles') : undefined
    const heapDir = args['heap-snapshot'] ? await tempDir('datapath-heap') : undefined
    const s: Setup = {
      origin,
      originPid: origin.daemon.pid,
      image,
      blobUrlPath: `/v2/bench/datapath/blobs/${blob.digest}`,
      blobBytes: blob.size,
      floor,
      trees,
      profileDir,
      heapDir,
    }
    const runs: RunResult[] = []
    const profiles: string[] = []
    for (let run = 1; run <= RUNS; run++) {
      log(`run ${run} of ${RUNS}`)
      const r = await oneRun(s, run)
      runs.push(r.result)
      // The first run's profiles are summarised; all are kept on disk.
      if (run === 1) profiles.push(...r.profiles)
    }
    loads.push(loadavg()[0]!)
    const when = new Date().toISOString()
    const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)
    const command = ['npm run bench:datapath --', ...process.argv.slice(2).map(quote)].join(' ')
    const title = args.title ?? `${when.slice(0, 16).replace('T', ' ')} UTC`
    const ctx = { title, command, when, facts: facts(s, loads) }
    const section = markdownSection(ctx, runs, profiles)
    process.stdout.write(`\n${section}\n`)
    if (profileDir !== undefined) log(`profiles kept in ${profileDir}`)
    if (heapDir !== undefined) log(`heap snapshot kept in ${heapDir}`)
    const exists = await readFile(args.out, 'utf8').then(
      () => true,
      () => false,
    )
    if (!exists)
      await writeFile(args.out, '# Data-path measurements\n\nWritten by `npm run bench:datapath`; newest last.\n\n')
    await appendFile(args.out, `${section}\n`)
    const jsonDir = join(REPO_ROOT, 'bench', 'datapath', 'results')
    await mkdir(jsonDir, { recursive: true })
    const jsonPath = join(jsonDir, `${when.replace(/[:.]/g, '-')}.json`)
    const json = { ...ctx, runs, summary: summarize(runs), idle: idleSummary(runs) }
    await writeFile(jsonPath, `${JSON.stringify(json, null, 2)}\n`)
    log(`appended to ${relative(process.cwd(), args.out)}; wrote ${relative(process.cwd(), jsonPath)}`)
  } finally {
    await cleanup.run()
  }
}

await main()
