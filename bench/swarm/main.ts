/**
 * Swarm measurements, all in one run on this machine (demo origin, seeder and agents in-process on 127.0.0.1,
 * the reader of (c) in a forked process):
 *
 *   npx node bench/swarm/main.ts [--runs 3] [--out bench/swarm/RESULTS.md]
 *
 * (a) origin egress: 8 agents pull one image at once; blob bytes the origin served / unique image bytes;
 * (b) a cold 256 MiB blob through the swarm (first agent, cold seeder): time to first byte against the same
 *     request's whole-blob time;
 * (c) agent-to-agent throughput of that blob, now complete at the agent, read from a second process: pipelined
 *     ChunkClient.getChunk as agents fetch chunks by default (ticket over libp2p, bytes over the bulk HTTPS path),
 *     the same over libp2p streams only, and the agent's /v2/ blob URL over undici (plain HTTP).
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseFlags } from '../args.ts'
import { request } from 'undici'
import { pullImage } from '../../shared/sample/index.ts'
import { bytesBySource } from '../../shared/metrics/index.ts'
import { Digester, DigestMismatchError } from '../../shared/oci/index.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'
import type { ReaderCommand, ReaderMode, ReaderReply } from './reader.ts'
import { withPeerId } from '../../shared/swarm/index.ts'

const MiB = 1024 * 1024
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const COMMAND = 'npx node bench/swarm/main.ts'

const { values: args } = parseFlags(process.argv.slice(2), {
  runs: { type: 'string', default: '3' },
  out: { type: 'string', default: join(REPO_ROOT, 'bench', 'swarm', 'RESULTS.md') },
  agents: { type: 'string', default: '8' },
  'layer-mib': { type: 'string', default: '8' },
  'big-mib': { type: 'string', default: '256' },
  depth: { type: 'string', default: '3' },
} as const)
const RUNS = Number(args.runs)
const AGENTS = Number(args.agents)
const LAYER_BYTES = Number(args['layer-mib']) * MiB
const BIG_BYTES = Number(args['big-mib']) * MiB
/** Requests in flight from the reader: the agent's chunk server answers `busy` beyond 3 concurrent uploads. */
const DEPTH = Number(args.depth)
/** The product's default chunk size, for (b) and (c). */
const BIG_CHUNK = '4MiB'
const BIG_CHUNK_BYTES = 4 * MiB
/** Smaller chunks for (a), so a 8 MiB layer still spreads over the swarm in several pieces. */
const FLEET_CHUNK = '1MiB'

const started = performance.now()
function log(message: string): void {
  process.stderr.write(`[swarm ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`)
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
const mb = (bytes: number, seconds: number) => bytes / 1e6 / seconds

interface Egress {
  readonly agents: number
  readonly uniqueBytes: number
  readonly originBytes: number
  readonly originGets: number
  readonly blobs: number
  readonly seconds: number
  readonly peerShare: number
}

async function measureEgress(): Promise<Egress> {
  log(`(a) ${AGENTS} agents, 3 layers of ${LAYER_BYTES / MiB} MiB, ${FLEET_CHUNK} chunks`)
  const fleet = await startFleet({
    agents: AGENTS,
    layers: 3,
    layerBytes: LAYER_BYTES,
    chunkSize: FLEET_CHUNK,
    agentArgs: ['--stall-timeout', '60s'],
  })
  try {
    const t0 = performance.now()
    // pullImage checks every manifest and blob digest.
    await Promise.all(fleet.agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    const seconds = (performance.now() - t0) / 1000
    let peer = 0
    let total = 0
    for (const a of fleet.agents) {
      const by = await bytesBySource(a.metrics)
      peer += by['peer'] ?? 0
      total += (by['peer'] ?? 0) + (by['seeder'] ?? 0) + (by['origin'] ?? 0)
    }
    return {
      agents: AGENTS,
      uniqueBytes: fleet.image.blobs.reduce((n, b) => n + b.size, 0),
      originBytes: fleet.origin.stats.blobBytesServed,
      originGets: fleet.origin.stats.blobRequests,
      blobs: fleet.image.blobs.length,
      seconds,
      peerShare: total === 0 ? 0 : peer / total,
    }
  } finally {
    await fleet.stop()
  }
}

interface ColdBlob {
  readonly size: number
  readonly headersMs: number
  readonly firstByteMs: number
  readonly wholeMs: number
  readonly bySource: Record<string, number>
}

/** One GET of the cold blob through agent 0, timed from the request to headers, first body byte and last byte. */
async function measureCold(fleet: Fleet): Promise<ColdBlob> {
  const blob = [...fleet.image.blobs].sort((a, b) => b.size - a.size)[0]!
  const agent = fleet.agents[0]!
  log(`(b) cold ${(blob.size / MiB).toFixed(0)} MiB blob through the swarm`)
  const t0 = performance.now()
  const res = await request(`${agent.url}/v2/demo/app/blobs/${blob.digest}`)
  const headersMs = performance.now() - t0
  if (res.statusCode !== 200) throw new Error(`cold blob: HTTP ${res.statusCode}`)
  let firstByteMs: number | undefined
  const d = Digester.for(blob.digest)
  for await (const part of res.body) {
    firstByteMs ??= performance.now() - t0
    d.update(part as Uint8Array)
  }
  const wholeMs = performance.now() - t0
  const got = d.digest()
  if (got !== blob.digest) throw new DigestMismatchError(blob.digest, got)
  return {
    size: blob.size,
    headersMs,
    firstByteMs: firstByteMs ?? wholeMs,
    wholeMs,
    bySource: await bytesBySource(agent.metrics),
  }
}

interface PeerThroughput {
  readonly encryption: string
  readonly bulk: number[]
  readonly libp2p: number[]
  readonly http: number[]
}

const MODES: readonly ReaderMode[] = ['bulk', 'libp2p', 'http']

/** (c): the reader process against agent 0, which now holds the blob complete; modes interleaved per run. */
async function measurePeer(fleet: Fleet, size: number): Promise<PeerThroughput> {
  const blob = [...fleet.image.blobs].sort((a, b) => b.size - a.size)[0]!
  const agent = fleet.agents[0]!
  const addr = agent.multiaddrs.find((m) => m.includes('/tcp/'))
  if (addr === undefined || agent.peerId === undefined) throw new Error('agent 0 has no libp2p address')
  const child = fork(fileURLToPath(new URL('./reader.ts', import.meta.url)), [], { stdio: 'inherit' })
  const replies: ReaderReply[] = []
  let wake: (() => void) | undefined
  child.on('message', (m: ReaderReply) => {
    replies.push(m)
    wake?.()
  })
  const exited = once(child, 'exit')
  const reply = async (): Promise<ReaderReply> => {
    for (;;) {
      const m = replies.shift()
      if (m !== undefined) {
        if (m.t === 'error') throw new Error(`reader: ${m.message}`)
        return m
      }
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), exited])
      if (child.exitCode !== null && replies.length === 0) throw new Error(`reader exited with ${child.exitCode}`)
    }
  }
  const command = (c: ReaderCommand) => child.send(c)
  try {
    command({
      t: 'setup',
      multiaddr: withPeerId(addr, agent.peerId!),
      peerId: agent.peerId,
      blobUrl: `${agent.url}/v2/demo/app/blobs/${blob.digest}`,
      digest: blob.digest,
      size,
      chunkSize: BIG_CHUNK_BYTES,
      depth: DEPTH,
    })
    const ready = await reply()
    if (ready.t !== 'ready') throw new Error(`reader: unexpected ${ready.t}`)
    const out: PeerThroughput = { encryption: ready.encryption, bulk: [], libp2p: [], http: [] }
    for (let run = 0; run < RUNS; run++) {
      // Rotate which goes first, so drift on a shared machine hits every mode alike.
      const modes = MODES.map((_, i) => MODES[(i + run) % MODES.length]!)
      for (const mode of modes) {
        command({ t: 'run', mode })
        const r = await reply()
        if (r.t !== 'result') throw new Error(`reader: unexpected ${r.t}`)
        out[mode].push(mb(r.bytes, r.seconds))
        log(`(c) run ${run + 1} ${mode}: ${mb(r.bytes, r.seconds).toFixed(0)} MB/s`)
      }
    }
    command({ t: 'stop' })
    await exited
    return out
  } finally {
    if (child.exitCode === null) child.kill()
  }
}

/** Each run's ratio (its modes ran back to back, so they saw about the same load), then their median. */
function perRun(xs: readonly number[], ys: readonly number[]): string {
  const ratios = xs.map((x, i) => x / ys[i]!)
  return `${ratios.map((r) => r.toFixed(2)).join(', ')} (${median(ratios).toFixed(2)})`
}

function report(a: Egress, b: ColdBlob, c: PeerThroughput, loads: readonly number[]): string {
  const cpu = cpus()
  const bk = median(c.bulk)
  const l = median(c.libp2p)
  const h = median(c.http)
  const lines = [
    '# Swarm measurements',
    '',
    `Generated by \`bench/swarm/main.ts\`; rerun with:`,
    '',
    `    ${COMMAND}`,
    '',
    `- ${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, ${new Date().toISOString()}`,
    `- 1-minute load average at start and end: ${loads.map((x) => x.toFixed(2)).join(', ')} (the machine may be shared)`,
    '- demo origin, seeder and agents in this process on 127.0.0.1; the reader of (c) in a forked process',
    '- MB = 10^6 bytes, MiB = 2^20 bytes',
    '',
    '| measure | value |',
    '| --- | ---: |',
    `| (a) origin blob bytes / unique image bytes, ${a.agents} agents pulling at once | ${(a.originBytes / a.uniqueBytes).toFixed(2)} |`,
    `| (a) origin blob GETs / image blobs | ${a.originGets} / ${a.blobs} |`,
    `| (a) wall time of the ${a.agents} pulls (s) | ${a.seconds.toFixed(1)} |`,
    `| (a) share of agents' bytes that came from other agents | ${(a.peerShare * 100).toFixed(0)} % |`,
    `| (b) cold ${(b.size / MiB).toFixed(0)} MiB blob, time to first byte (ms) | ${b.firstByteMs.toFixed(0)} |`,
    `| (b) cold blob, whole blob (ms) | ${b.wholeMs.toFixed(0)} (${mb(b.size, b.wholeMs / 1000).toFixed(0)} MB/s) |`,
    `| (b) first byte / whole blob | ${((b.firstByteMs / b.wholeMs) * 100).toFixed(1)} % |`,
    `| (c) Shoal's chunk path (ticket over libp2p, bytes over bulk HTTPS), ${DEPTH} in flight, ${BIG_CHUNK} chunks (MB/s, median of ${RUNS}) | ${bk.toFixed(0)} |`,
    `| (c) libp2p stream only (ChunkClient without bulk path), same pipeline (MB/s, median of ${RUNS}) | ${l.toFixed(0)} |`,
    `| (c) plain HTTP /v2/ blob GET over undici (MB/s, median of ${RUNS}) | ${h.toFixed(0)} |`,
    `| (c) **Shoal chunk path / plain HTTP** | **${(bk / h).toFixed(2)}** |`,
    `| (c) libp2p stream / plain HTTP | ${(l / h).toFixed(2)} |`,
    `| (c) Shoal chunk path / plain HTTP, per run (same run's figures; median) | ${perRun(c.bulk, c.http)} |`,
    `| (c) libp2p stream / plain HTTP, per run (median) | ${perRun(c.libp2p, c.http)} |`,
    '',
    'Details:',
    `- (a) ${a.agents} agents, 3 layers of ${LAYER_BYTES / MiB} MiB payload + config (${(a.uniqueBytes / MiB).toFixed(1)} MiB unique), ${FLEET_CHUNK} chunks; origin served ${a.originBytes} bytes in ${a.originGets} blob GETs, counted by the demo origin`,
    `- (b) ${BIG_CHUNK} chunks; agent 0 and the seeder both cold, the seeder pulls from the origin as the agent asks; response headers after ${b.headersMs.toFixed(0)} ms; bytes received by agent 0 by source: ${JSON.stringify(b.bySource)}`,
    `- (c) the same agent (holding the blob complete now) serves all three; libp2p connection encrypted with ${c.encryption}; bulk path: TLS 1.3, both sides presenting their libp2p certificate; bytes counted, not hashed, in the reader`,
    `- (c) bulk MB/s: ${c.bulk.map((x) => x.toFixed(0)).join(', ')}; libp2p MB/s: ${c.libp2p.map((x) => x.toFixed(0)).join(', ')}; HTTP MB/s: ${c.http.map((x) => x.toFixed(0)).join(', ')}`,
    '',
  ]
  return lines.join('\n')
}

async function main(): Promise<void> {
  const load0 = loadavg()[0]!
  const a = await measureEgress()
  log(`(a) origin/unique ${(a.originBytes / a.uniqueBytes).toFixed(2)} in ${a.seconds.toFixed(1)} s`)
  log(`(b) generating a ${BIG_BYTES / MiB} MiB layer`)
  const fleet = await startFleet({
    agents: 1,
    layers: 1,
    layerBytes: BIG_BYTES,
    chunkSize: BIG_CHUNK,
    agentArgs: ['--stall-timeout', '60s'],
  })
  try {
    const b = await measureCold(fleet)
    log(`(b) first byte ${b.firstByteMs.toFixed(0)} ms, whole ${b.wholeMs.toFixed(0)} ms`)
    const c = await measurePeer(fleet, b.size)
    const text = report(a, b, c, [load0, loadavg()[0]!])
    process.stdout.write(`${text}\n`)
    await writeFile(args.out, text)
    log(`wrote ${args.out}`)
  } finally {
    await fleet.stop()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
