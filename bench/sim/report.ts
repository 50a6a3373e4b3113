import { cpus, release, totalmem } from 'node:os'
import type { BenchConfig, ScenarioName } from '../fleet/config.ts'
import type { BenchImage } from '../fleet/image.ts'
import type { HostPlan } from '../fleet/netns.ts'
import {
  buildReport,
  fmtBytes,
  type MachineInfo,
  type Report,
  type ScenarioMeasurement,
  summaryMarkdown,
} from '../fleet/report.ts'
import { renderSvg } from '../fleet/svg.ts'
import type { SimConfig } from './config.ts'
import type { SimRun } from './run.ts'
import type { SimParams, SimScenario } from './world.ts'

export const SIM_TITLES: Readonly<Record<ScenarioName, string>> = {
  direct: 'direct from origin',
  cache: 'pull-through cache',
  'shoal-cold': 'shoal, cold',
  'shoal-preheated': 'shoal, preheated seeder',
  'shoal-sites': 'shoal, site-aware',
  'shoal-seederless': 'shoal, no seeder',
}

export interface SimScenarioExtra {
  readonly name: SimScenario
  readonly bytesReceived: SimRun['bytesReceived']
  readonly dht?: SimRun['dht']
  readonly shoal?: SimRun['shoal']
  readonly events: number
  readonly flowUpdates: number
  readonly simulatedS: number
  readonly wallS: number
}

/** The fleet's report, plus what only a simulation knows. */
export interface SimReport extends Report {
  readonly simulator: {
    readonly params: SimParams
    readonly model: readonly string[]
    readonly scenarios: readonly SimScenarioExtra[]
  }
}

export const MODEL_NOTES: readonly string[] = [
  "Simulated: discrete events in virtual time; Shoal's DownloadSession and DownloadScheduler (per agent and blob), SeedPlanner (seeder) and UploadSlots (every chunk server) are the real modules.",
  "Links: max-min fair fluid flows, each flow limited by its sender's uplink and its receiver's downlink; rates include the wire efficiency.",
  "Per chunk: request one way, `busy` if the sender's UploadSlots refuse it, else a flow, then the last byte one way; bytes flowing count as progress (scheduler and stall clock); no CPU limits.",
  'Discovery: seeder `have` long polls with up to 16 peer hints; DHT provide after the first chunk, lookups at rediscoveries as the agent paces them (LookupPacer: every second while they bring new holders, backing off to 4 s; in a site 5 s apart), up to K=20 random providers each.',
]

function machine(): MachineInfo {
  const c = cpus()
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    tools: {},
  }
}

export interface SimReportInput {
  readonly startedAt: string
  readonly finishedAt: string
  readonly command: string
  readonly cfg: SimConfig
  readonly params: SimParams
  readonly runs: readonly SimRun[]
}

export function buildSimReport(input: SimReportInput): SimReport {
  const { cfg, params, runs } = input
  const layers = params.blobBytes.length - 1
  const layerBytes = Math.max(0, ...params.blobBytes.slice(1))
  const config: BenchConfig = {
    mode: cfg.mode,
    nodes: params.nodes,
    sites: cfg.sites,
    image: { name: 'bench/sample', tag: 'v1', layers, layerBytes, seed: `sim-${params.seed}` },
    links: params.links,
    scenarios: ['direct', 'cache', 'shoal-cold', 'shoal-preheated'].filter(
      (n) => n === 'cache' || runs.some((r) => r.scenario === n),
    ) as ScenarioName[],
    outDir: cfg.outDir,
    pullTimeoutS: params.limitMs / 1000,
    sampleMs: 0,
    shoalBin: '(simulated)',
    agentFlags: [],
    seederFlags: [],
    swarmChunkBytes: params.chunkBytes,
    agentUploadSlots: params.uploadSlots,
    cpuProf: false,
  }
  const blobs = params.blobBytes.map((size, i) => ({
    digest: `sim:blob-${i}`,
    size,
    mediaType: i === 0 ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.oci.image.layer.v1.tar',
  }))
  const image: BenchImage = {
    rootDigest: 'sim:manifest',
    rootMediaType: 'application/vnd.oci.image.manifest.v1+json',
    manifestBytes: params.manifestBytes,
    blobs,
    generateS: 0,
    pushS: 0,
    originRef: '(simulated image)',
    name: 'bench/sample',
    tag: 'v1',
    bytes: params.manifestBytes + params.blobBytes.reduce((a, b) => a + b, 0),
  }
  const host = (role: HostPlan['role'], name: string, up: number, down: number | undefined): HostPlan => ({
    role,
    name,
    ns: '',
    addr: '',
    hubDev: '',
    upMbit: up,
    downMbit: down,
  })
  const l = params.links
  const hosts: HostPlan[] = [
    host('origin', 'origin', l.originUp, undefined),
    host('seeder', 'seeder', l.seederUp, l.seederDown),
  ]
  for (let i = 1; i <= params.nodes; i++) hosts.push(host('node', `node-${i}`, l.nodeUp, l.nodeDown))
  const measured: ScenarioMeasurement[] = config.scenarios.map((name) => {
    const r = runs.find((x) => x.scenario === name)
    if (r === undefined) {
      return {
        name,
        title: SIM_TITLES[name],
        status: 'unavailable',
        reason: 'not modelled by the simulator',
        nodes: [],
      }
    }
    return {
      name,
      title: SIM_TITLES[name],
      status: 'ok',
      nodes: r.nodes,
      rolloutCounters: r.rolloutCounters,
      scenarioCounters: r.scenarioCounters,
    }
  })
  const report = buildReport({
    startedAt: input.startedAt,
    finishedAt: input.finishedAt,
    command: input.command,
    machine: machine(),
    config,
    image,
    hosts,
    setup: { fleetS: 0, originS: 0, imageGenerateS: 0, imagePushS: 0, totalS: 0 },
    scenarios: measured,
  })
  return {
    ...report,
    // The per-host list would be N lines of nothing the simulator knows (no addresses).
    hosts: report.hosts.filter((h) => h.role !== 'node'),
    notes: [...MODEL_NOTES, ...report.notes.filter((n) => !n.startsWith('CPU') && !n.startsWith('Bytes: link'))],
    simulator: {
      params,
      model: MODEL_NOTES,
      scenarios: runs.map((r) => ({
        name: r.scenario,
        bytesReceived: r.bytesReceived,
        ...(r.dht === undefined ? {} : { dht: r.dht }),
        ...(r.shoal === undefined ? {} : { shoal: r.shoal }),
        events: r.events,
        flowUpdates: r.flowUpdates,
        simulatedS: r.simulatedS,
        wallS: r.wallS,
      })),
    },
  }
}

const x = (v: number) => `${v.toFixed(3)}×`
const f1 = (v: number) => v.toFixed(1)

export function simSummaryMarkdown(r: SimReport): string {
  const S = r.image.bytes
  const base = summaryMarkdown(r)
    .replace(/^# Fleet benchmark, /, '# Simulated fleet, ')
    .replace(/\nSetup: [^\n]*\n/, '\n')
  const head =
    '| scenario | received from origin / seeder / peers (×S per node) | DHT lookups per node (mean, max) |' +
    ' provider records per node (mean, max, nodes holding) | providers per key | origin fallbacks | busy / requests |' +
    ' peers tracked per blob (mean, max) | events | wall s |'
  const rows = r.simulator.scenarios.map((s) => {
    const n = r.config.nodes
    const b = s.bytesReceived
    const per = (v: number) => (v / S / n).toFixed(3)
    const dht = s.dht
    const sh = s.shoal
    return (
      `| ${SIM_TITLES[s.name]} | ${per(b.origin)} / ${per(b.seeder)} / ${per(b.peers)} | ` +
      `${dht === undefined ? '–' : `${f1(dht.lookupsPerNode.mean)}, ${dht.lookupsPerNode.max}`} | ` +
      `${dht === undefined ? '–' : `${f1(dht.recordsPerNode.mean)}, ${dht.recordsPerNode.max}, ${dht.recordsPerNode.nodesHolding}`} | ` +
      `${dht?.maxProvidersPerKey ?? '–'} | ${sh?.fallbacks ?? '–'} | ${sh === undefined ? '–' : `${sh.busy} / ${sh.requests}${offerNote(sh)}`} | ` +
      `${sh === undefined ? '–' : `${f1(sh.meanTracked)}, ${sh.maxTracked}`} | ${s.events} | ${f1(s.wallS)} |`
    )
  })
  const p = r.simulator.params
  return [
    base.trimEnd(),
    '',
    '## Simulator',
    '',
    head,
    `|${' --- |'.repeat(10)}`,
    ...rows,
    '',
    `Model: chunk ${fmtBytes(p.chunkBytes)}, RTT ${p.rttMs} ms, wire efficiency ${p.wireEfficiency.toFixed(3)}, ` +
      `${p.uploadSlots} upload slots per agent, ${p.seederUploadSlots} on the seeder (send buffer ${fmtBytes(p.sendBufferBytes)}, slot wait ${p.slotWaitMs} ms), ` +
      `pipeline per peer ${p.inflightPerPeer ?? 'scheduler default'}, ` +
      `requests queued per blob ${p.inflightTotalMs === undefined ? 'scheduler default' : p.inflightTotalMs === 0 ? 'uncapped' : `${p.inflightTotalMs} ms`}, ${p.nodeInflight === 0 ? 'no node-wide request budget' : `${p.nodeInflight ?? 'default'} requests in flight per node`}, max ${p.maxPeers === 0 ? 'unlimited' : p.maxPeers} peers per blob, ` +
      `stall timeout ${p.stallTimeoutMs / 1000} s, rediscovery every ${p.lookupPeriodMs} ms (DHT lookups paced as the agent's, ${p.lookupLatencyMs} ms each), ` +
      `${(p.offerShare ?? 0) > 0 ? `offers from ${p.offerShare} of the agents (${p.offerAhead ?? 0} ahead), ` : ''}` +
      `seed ${p.seed}.`,
    '',
  ].join('\n')
}

export function simSvg(r: SimReport): string {
  return renderSvg(r).replace('Shoal fleet benchmark (', 'Shoal fleet, SIMULATED (')
}

/** One line per fleet size and scenario: what the issue asks of the simulator. */
export function sweepMarkdown(reports: readonly SimReport[]): string {
  const lines = [
    '| N | scenario | T* s | p50 s | p99 s | max s | p99/T* | max/T* | origin bytes/S | DHT lookups/node | records/node (mean, max) | fallbacks | wall s |',
    `|${' --- |'.repeat(13)}`,
  ]
  for (const r of reports) {
    for (const s of r.scenarios) {
      if (s.completion === undefined) continue
      const extra = r.simulator.scenarios.find((e) => e.name === s.name)
      const dht = extra?.dht
      const failed = s.failedNodes > 0 ? ` (${s.failedNodes} unfinished)` : ''
      lines.push(
        `| ${r.config.nodes} | ${s.title}${failed} | ${f1(s.bound.seconds)} | ${f1(s.completion.p50)} | ${f1(s.completion.p99)} | ` +
          `${f1(s.completion.max)} | ${x(s.ratios?.p99OverBound ?? NaN)} | ${x(s.ratios?.maxOverBound ?? NaN)} | ` +
          `${x(s.ratios?.originBytesOverImage ?? NaN)} | ${dht === undefined ? '–' : f1(dht.lookupsPerNode.mean)} | ` +
          `${dht === undefined ? '–' : `${f1(dht.recordsPerNode.mean)}, ${dht.recordsPerNode.max}`} | ` +
          `${extra?.shoal?.fallbacks ?? '–'} | ${f1(extra?.wallS ?? 0)} |`,
      )
    }
  }
  return `${lines.join('\n')}\n`
}

/** With offers on (`--offers`): offers taken / made, besides the requests. */
function offerNote(sh: NonNullable<SimScenarioExtra['shoal']>): string {
  return sh.offers === undefined ? '' : ` (offers taken ${sh.offers.accepted} / made ${sh.offers.offered})`
}
