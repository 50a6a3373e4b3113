import { type BoundSources, type LowerBound, mbitToBps, scenarioBound } from './bound.ts'
import type { BenchConfig, ScenarioName } from './config.ts'
import { type LinkCounters, payloadBytes, type SentBytes, sent, sumCounters, ZERO_COUNTERS } from './counters.ts'
import type { CpuUse } from './cpu.ts'
import type { KindCpu } from './process-cpu.ts'
import { profileLines, type ProfileSummary } from '../datapath/profile.ts'
import type { BenchImage } from './image.ts'
import type { HostPlan } from './netns.ts'
import type { NodeResult, Sample } from './rollout.ts'
import { type SiteBound, siteBound, type WanCutDone } from './sites.ts'
import { type Distribution, distribution } from './stats.ts'

export type ScenarioStatus = 'ok' | 'failed' | 'unavailable'

/** What the harness measured for one scenario, before any arithmetic. */
export interface ScenarioMeasurement {
  readonly name: ScenarioName
  readonly title: string
  readonly status: ScenarioStatus
  readonly reason?: string
  readonly setupS?: number
  readonly nodes: readonly NodeResult[]
  /** Per host name: link counters over the rollout alone. */
  readonly rolloutCounters?: Readonly<Record<string, LinkCounters>>
  /** Per host name: over setup and rollout together (a preheat's origin traffic shows up here). */
  readonly scenarioCounters?: Readonly<Record<string, LinkCounters>>
  /** Machine busy fraction in the second before the rollout (other load on the machine), and during it. */
  readonly cpu?: ScenarioCpu
  readonly timeline?: readonly Sample[]
  /** `--wan-cut`: what was cut, and when it really went down and came back. */
  readonly wanCut?: WanCutDone
  /** `--cpu-prof`: each Shoal daemon's profile over the rollout. */
  readonly profiles?: readonly DaemonProfile[]
}

export interface DaemonProfile {
  /** The daemon's name in the scenario (`seeder`, `agent-node-3`, …). */
  readonly daemon: string
  readonly summary: ProfileSummary
}

export interface ScenarioCpu {
  readonly backgroundBusy: number
  /** The kernel's 1, 5 and 15 minute load averages right before the rollout. */
  readonly loadAverage?: readonly number[]
  readonly rollout: CpuUse
  /** CPU seconds the machine was busy during the rollout (all cores together). */
  readonly busySeconds?: number
  /** Of those, per kind of process (agents, seeder, registry, pull clients, …), largest first. */
  readonly byProcess?: readonly KindCpu[]
}

export interface MachineInfo {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryBytes: number
  readonly kernel: string
  readonly node: string
  readonly tools: Readonly<Record<string, string>>
  /** 1, 5 and 15 minute load averages when the run started: other work on the machine shows here. */
  readonly loadAverage?: readonly number[]
}

export interface SetupTimes {
  readonly fleetS: number
  readonly originS: number
  readonly imageGenerateS: number
  readonly imagePushS: number
  readonly totalS: number
}

export interface ReportInput {
  readonly startedAt: string
  readonly finishedAt: string
  readonly command: string
  readonly machine: MachineInfo
  readonly config: BenchConfig
  readonly image: BenchImage
  readonly hosts: readonly HostPlan[]
  readonly setup: SetupTimes
  readonly scenarios: readonly ScenarioMeasurement[]
}

export interface BytesBySource {
  readonly origin: SentBytes
  readonly cache: SentBytes
  readonly seeder: SentBytes
  /** Sum over the nodes' uplinks (peer-to-peer traffic). */
  readonly nodes: SentBytes
  /** Sum over the nodes' downlinks. */
  readonly nodesReceived: SentBytes
}

export interface Ratios {
  readonly maxOverBound: number
  readonly p99OverBound: number
  /** Origin payload bytes over the whole scenario (setup + rollout) / S. */
  readonly originBytesOverImage: number
  readonly originWireBytesOverImage: number
  /** direct's max / this max; null when either has no complete rollout. */
  readonly speedupVsDirect: number | null
  readonly speedupVsCache: number | null
}

/** One site's WAN link over the rollout, from the kernel's counters of its core end. */
export interface SiteWan {
  readonly site: string
  /** Into the site (core → site) and out of it. */
  readonly into: SentBytes
  readonly out: SentBytes
  /** Payload bytes / S. */
  readonly intoOverImage: number
  readonly outOverImage: number
  readonly nodes: number
  /** Nodes of this site whose pull finished with every blob at full size. */
  readonly verified: number
  /** The site's slowest node, when all of them finished. */
  readonly slowestS?: number
}

/** An edge-site run, per scenario: each WAN link's bytes, and completion against the site bound. */
export interface SiteReport {
  /** T*_site, with U_core = the scenario's serving core uplinks (bound.sources.sourceMbit). */
  readonly bound: SiteBound & { readonly coreUpMbit: number; readonly wanMbit: number }
  readonly wan: readonly SiteWan[]
  /** The largest `intoOverImage` over the sites. */
  readonly worstIntoOverImage: number
  /** Slowest node / T*_site; only when every node finished. */
  readonly maxOverSiteBound?: number
  readonly p99OverSiteBound?: number
  readonly wanCut?: WanCutDone
}

export interface ScenarioReport {
  readonly name: ScenarioName
  readonly title: string
  readonly status: ScenarioStatus
  readonly reason?: string
  readonly setupS?: number
  readonly bound: LowerBound & { readonly sources: BoundSources }
  readonly nodes: readonly NodeResult[]
  readonly failedNodes: number
  /** Over the nodes that finished; absent when none did. */
  readonly completion?: Distribution
  readonly bytes?: {
    readonly rollout: BytesBySource
    readonly scenario: BytesBySource
  }
  readonly ratios?: Ratios
  /** Origin uplink bytes during the rollout over what U_o could carry in the rollout's max time. */
  readonly originLinkUse?: number
  readonly cpu?: ScenarioCpu
  readonly timeline?: readonly Sample[]
  /** Only in an edge-site run (`--sites`). */
  readonly sites?: SiteReport
}

export interface Report {
  readonly version: 1
  readonly startedAt: string
  readonly finishedAt: string
  readonly command: string
  readonly machine: MachineInfo
  readonly config: BenchConfig
  readonly image: {
    readonly ref: string
    readonly bytes: number
    readonly rootDigest: string
    readonly blobs: BenchImage['blobs']
  }
  readonly hosts: readonly {
    readonly name: string
    readonly role: string
    readonly addr: string
    readonly site?: string
  }[]
  readonly setup: SetupTimes
  readonly scenarios: readonly ScenarioReport[]
  readonly notes: readonly string[]
}

function bytesBySource(hosts: readonly HostPlan[], counters: Readonly<Record<string, LinkCounters>>): BytesBySource {
  const of = (role: HostPlan['role']) =>
    sumCounters(hosts.filter((h) => h.role === role).map((h) => counters[h.name] ?? ZERO_COUNTERS))
  const nodes = of('node')
  return {
    origin: sent(of('origin')),
    cache: sent(of('cache')),
    seeder: sent(of('seeder')),
    nodes: sent(nodes),
    nodesReceived: sent({
      txBytes: nodes.rxBytes,
      txPackets: nodes.rxPackets,
      rxBytes: nodes.txBytes,
      rxPackets: nodes.txPackets,
    }),
  }
}

/**
 * The site columns of one scenario: WAN bytes per site over the rollout (`wan:<site>` counters, as the fleet
 * reads them: tx = out of the site, rx = into it) over S, and the slowest node against T*_site.
 */
export function siteReport(
  s: Pick<ScenarioReport, 'nodes' | 'bound' | 'completion' | 'failedNodes'>,
  hosts: readonly HostPlan[],
  counters: Readonly<Record<string, LinkCounters>> | undefined,
  input: {
    readonly imageBytes: number
    readonly sites: number
    readonly wanMbit: number
    readonly wanCut?: WanCutDone
  },
): SiteReport {
  const S = input.imageBytes
  const coreUpMbit = s.bound.sources.sourceMbit
  const bound = siteBound({
    imageBytes: S,
    sites: input.sites,
    wanDownBps: mbitToBps(input.wanMbit),
    wanUpBps: mbitToBps(input.wanMbit),
    coreUpBps: mbitToBps(coreUpMbit),
  })
  const results = new Map(s.nodes.map((n) => [n.node, n]))
  const wan: SiteWan[] = []
  for (let k = 0; k < input.sites; k++) {
    const site = `site-${k}`
    const c = counters?.[`wan:${site}`] ?? ZERO_COUNTERS
    const into = { wire: c.rxBytes, payload: payloadBytes(c.rxBytes, c.rxPackets) }
    const out = { wire: c.txBytes, payload: payloadBytes(c.txBytes, c.txPackets) }
    const members = hosts.filter((h) => h.role === 'node' && h.site === site).map((h) => results.get(h.name))
    const done = members.filter((n) => n?.ok === true)
    wan.push({
      site,
      into,
      out,
      intoOverImage: into.payload / S,
      outOverImage: out.payload / S,
      nodes: members.length,
      verified: done.length,
      ...(done.length === members.length && done.length > 0
        ? { slowestS: Math.max(...done.map((n) => n!.seconds)) }
        : {}),
    })
  }
  const complete = s.failedNodes === 0 && s.completion !== undefined
  return {
    bound: { ...bound, coreUpMbit, wanMbit: input.wanMbit },
    wan,
    worstIntoOverImage: Math.max(0, ...wan.map((w) => w.intoOverImage)),
    ...(complete
      ? {
          maxOverSiteBound: s.completion!.max / bound.seconds,
          p99OverSiteBound: s.completion!.p99 / bound.seconds,
        }
      : {}),
    ...(input.wanCut === undefined ? {} : { wanCut: input.wanCut }),
  }
}

/** A complete rollout: the scenario ran and every node got the image. */
function completeMax(s: ScenarioReport | undefined): number | undefined {
  if (s === undefined || s.status !== 'ok' || s.failedNodes > 0 || s.completion === undefined) return undefined
  return s.completion.max
}

const NOTES = [
  "Times: from the common start of the rollout to each node's client (skopeo copy to an OCI layout) exiting; percentiles are nearest-rank.",
  "T* = max(S/U_first, S/D_n, N*S/(U_src + N*U_n)) from the configured link rates; see each scenario's bound.sources.",
  "Bytes: link counters of each host's veth (hub side), before and after; payload = link bytes - 66 bytes of Ethernet/IPv4/TCP headers per packet.",
  "originBytesOverImage uses the origin's payload bytes over the whole scenario (setup + rollout), so a preheat counts.",
  'CPU: busy fraction of the whole machine from /proc/stat (1.0 = every core busy); backgroundBusy is the second before the rollout, load the 1-minute load average then.',
]

const SITE_NOTES = [
  "Sites: WAN bytes are the kernel's counters of each site's WAN link (its core end) over the rollout, as payload (66 bytes of headers per packet off) / S; into = core to site.",
  'T*_site = max(S/WAN down, K*S/(U_core + K*WAN up)), U_core = the core uplinks that serve in that scenario (the same U_src as T*); limit names the term that binds.',
]

/** Every number of a run, shaped for report.json (and the summary and the picture). */
export function buildReport(input: ReportInput): Report {
  const { config, image, hosts } = input
  const S = image.bytes
  const N = config.nodes
  const partial: ScenarioReport[] = input.scenarios.map((m) => {
    const bound = scenarioBound(m.name, config.links, S, N)
    const ok = m.nodes.filter((n) => n.ok)
    const base: ScenarioReport = {
      name: m.name,
      title: m.title,
      status: m.status,
      ...(m.reason === undefined ? {} : { reason: m.reason }),
      ...(m.setupS === undefined ? {} : { setupS: m.setupS }),
      bound,
      nodes: m.nodes,
      failedNodes: m.nodes.length - ok.length,
      ...(ok.length === 0 ? {} : { completion: distribution(ok.map((n) => n.seconds)) }),
      ...(m.rolloutCounters === undefined || m.scenarioCounters === undefined
        ? {}
        : {
            bytes: {
              rollout: bytesBySource(hosts, m.rolloutCounters),
              scenario: bytesBySource(hosts, m.scenarioCounters),
            },
          }),
      ...(m.cpu === undefined ? {} : { cpu: m.cpu }),
      ...(m.timeline === undefined ? {} : { timeline: m.timeline }),
    }
    if (config.sites === undefined || m.status !== 'ok') return base
    return {
      ...base,
      sites: siteReport(base, hosts, m.rolloutCounters, {
        imageBytes: S,
        sites: config.sites.sites,
        wanMbit: config.sites.wanMbit,
        ...(m.wanCut === undefined ? {} : { wanCut: m.wanCut }),
      }),
    }
  })
  const byName = new Map(partial.map((s) => [s.name, s]))
  const directMax = completeMax(byName.get('direct'))
  const cacheMax = completeMax(byName.get('cache'))
  const scenarios = partial.map((s): ScenarioReport => {
    if (s.completion === undefined || s.bytes === undefined) return s
    const max = completeMax(s)
    const speedup = (baseline: number | undefined) =>
      baseline === undefined || max === undefined ? null : baseline / max
    const originWindowBytes = s.bytes.rollout.origin.wire
    return {
      ...s,
      ratios: {
        maxOverBound: s.completion.max / s.bound.seconds,
        p99OverBound: s.completion.p99 / s.bound.seconds,
        originBytesOverImage: s.bytes.scenario.origin.payload / S,
        originWireBytesOverImage: s.bytes.scenario.origin.wire / S,
        speedupVsDirect: speedup(directMax),
        speedupVsCache: speedup(cacheMax),
      },
      originLinkUse: originWindowBytes / (mbitToBps(config.links.originUp) * s.completion.max),
    }
  })
  return {
    version: 1,
    startedAt: input.startedAt,
    finishedAt: input.finishedAt,
    command: input.command,
    machine: input.machine,
    config,
    image: {
      ref: image.originRef,
      bytes: S,
      rootDigest: image.rootDigest,
      blobs: image.blobs,
    },
    hosts: hosts.map((h) => ({
      name: h.name,
      role: h.role,
      addr: h.addr,
      ...(h.site === undefined ? {} : { site: h.site }),
    })),
    setup: input.setup,
    scenarios,
    notes: config.sites === undefined ? NOTES : [...NOTES, ...SITE_NOTES],
  }
}

const fmtS = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(1))
const fmtX = (v: number | null | undefined) => (v === undefined || v === null ? '–' : `${v.toFixed(2)}×`)
const fmtPct = (v: number | undefined) => (v === undefined ? '–' : `${Math.round(v * 100)}%`)

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

/** The configuration in one line, for the summary and the picture. */
export function configLine(r: Report): string {
  const l = r.config.links
  const sites = r.config.sites
  const shape = sites === undefined ? '' : ` (${sites.sites} sites × ${sites.siteNodes}, WAN ${sites.wanMbit} mbit)`
  return (
    `N=${r.config.nodes}${shape}, S=${fmtBytes(r.image.bytes)} in ${r.config.image.layers} layers; ` +
    `U_o=${l.originUp}, U_cache=${l.cacheUp}/${l.cacheDown}, U_s=${l.seederUp}/${l.seederDown}, ` +
    `U_n=${l.nodeUp}, D_n=${l.nodeDown} mbit`
  )
}

/** The edge-site table of a run (none for a flat fleet): per scenario, WAN bytes per site and T*_site. */
export function siteTable(r: Report): string[] {
  const shape = r.config.sites
  if (shape === undefined) return []
  const names = Array.from({ length: shape.sites }, (_, k) => `site-${k}`)
  const cut = r.config.wanCut
  const head =
    `| scenario | nodes verified | WAN into site / S (${names.join(', ')}) | WAN out of site / S | ` +
    'worst into / S | slowest s | T*_site s (limit) | slowest / T*_site |'
  const rows = r.scenarios.map((s) => {
    const x = s.sites
    const verified = `${s.nodes.filter((n) => n.ok).length} of ${s.nodes.length}`
    if (x === undefined) return `| ${s.title} | ${s.status === 'ok' ? verified : s.status} | – | – | – | – | – | – |`
    const list = (f: (w: SiteWan) => number) => x.wan.map((w) => f(w).toFixed(2)).join(', ')
    return (
      `| ${s.title} | ${verified} | ${list((w) => w.intoOverImage)} | ${list((w) => w.outOverImage)} | ` +
      `${x.worstIntoOverImage.toFixed(2)} | ${fmtS(s.completion?.max)} | ${fmtS(x.bound.seconds)} (${x.bound.limitedBy}) | ` +
      `${fmtX(x.maxOverSiteBound)} |`
    )
  })
  const cuts = r.scenarios.flatMap((s) => {
    const c = s.sites?.wanCut
    if (c === undefined) return []
    const when =
      c.downAtS === undefined
        ? 'never went down (the rollout was over first)'
        : `down at ${c.downAtS.toFixed(1)} s, up at ${c.upAtS === undefined ? '–' : c.upAtS.toFixed(1)} s`
    return [`- ${s.title}: ${c.site} WAN ${when}${c.error === undefined ? '' : ` (${c.error})`}`]
  })
  return [
    `Edge sites: ${shape.sites} × ${shape.siteNodes} nodes, each site behind a ${shape.wanMbit} mbit WAN link` +
      (cut === undefined ? '.' : `; ${cut.site}'s WAN cut ${cut.atS} s into each rollout for ${cut.forS} s.`),
    '',
    head,
    `|${' --- |'.repeat(8)}`,
    ...rows,
    ...(cuts.length > 0 ? ['', ...cuts] : []),
  ]
}

/** `--cpu-prof`: each Shoal daemon's top frames over the rollout, per scenario (profiles.md). */
export function profilesMarkdown(r: Report, measurements: readonly ScenarioMeasurement[]): string | undefined {
  const parts = measurements.flatMap((m) =>
    (m.profiles ?? []).flatMap((p) => ['', ...profileLines(`${m.title}, ${p.daemon}, over the rollout`, p.summary)]),
  )
  if (parts.length === 0) return undefined
  return [`# Profiles of the fleet run of ${r.startedAt}`, '', `\`${r.command}\``, ...parts, ''].join('\n')
}

/** Per scenario, who used the CPU during the rollout: CPU seconds per kind of process, of the machine's busy time. */
export function cpuLines(r: Report): string[] {
  const lines = r.scenarios.flatMap((s) => {
    const by = s.cpu?.byProcess
    const busy = s.cpu?.busySeconds
    if (by === undefined || busy === undefined || busy <= 0) return []
    const listed = by.reduce((sum, k) => sum + k.seconds, 0)
    const parts = by.map((k) => `${k.kind}${k.processes > 1 ? ` (${k.processes})` : ''} ${k.seconds.toFixed(1)} s`)
    const rest = busy - listed
    if (rest > 0.05) parts.push(`outside the fleet's processes (interrupts, other work) ${rest.toFixed(1)} s`)
    return [`- ${s.title}: ${busy.toFixed(1)} CPU s busy: ${parts.join(', ')}`]
  })
  return lines.length === 0 ? [] : ['CPU during the rollout, by process (utime + stime from /proc):', '', ...lines]
}

/** The Markdown table of a run. */
export function summaryMarkdown(r: Report): string {
  const head =
    '| scenario | status | p50 s | p90 s | p99 s | max s | T* s (limit) | max/T* | p99/T* | origin bytes/S |' +
    ' vs direct | vs cache | CPU busy (before, load) |'
  const rule = `|${' --- |'.repeat(13)}`
  const rows = r.scenarios.map((s) => {
    const c = s.completion
    const status = s.status === 'ok' && s.failedNodes > 0 ? `${s.failedNodes} of ${s.nodes.length} failed` : s.status
    const load = s.cpu?.loadAverage?.[0]
    const cpu =
      s.cpu === undefined
        ? '–'
        : `${fmtPct(s.cpu.rollout.busy)} (${fmtPct(s.cpu.backgroundBusy)}${load === undefined ? '' : `, ${load.toFixed(1)}`})`
    return (
      `| ${s.title} | ${status} | ${fmtS(c?.p50)} | ${fmtS(c?.p90)} | ${fmtS(c?.p99)} | ${fmtS(c?.max)} | ` +
      `${fmtS(s.bound.seconds)} (${s.bound.limitedBy}) | ${fmtX(s.ratios?.maxOverBound)} | ` +
      `${fmtX(s.ratios?.p99OverBound)} | ${fmtX(s.ratios?.originBytesOverImage)} | ` +
      `${fmtX(s.ratios?.speedupVsDirect)} | ${fmtX(s.ratios?.speedupVsCache)} | ${cpu} |`
    )
  })
  const reasons = r.scenarios
    .filter((s) => s.reason !== undefined)
    .map((s) => `- ${s.title}: ${s.status === 'unavailable' ? 'not available' : 'failed'}: ${s.reason}`)
  const failures = r.scenarios.flatMap((s) =>
    s.nodes.filter((n) => !n.ok).map((n) => `- ${s.title}, ${n.node}: ${n.error ?? 'failed'}`),
  )
  const setup = r.setup
  const sites = siteTable(r)
  const cpu = cpuLines(r)
  return [
    `# Fleet benchmark, ${r.startedAt}`,
    '',
    `\`${r.command}\``,
    '',
    `${configLine(r)}. Image \`${r.image.ref}\` (${r.image.bytes} bytes).`,
    '',
    head,
    rule,
    ...rows,
    ...(sites.length > 0 ? ['', ...sites] : []),
    ...(cpu.length > 0 ? ['', ...cpu] : []),
    ...(reasons.length > 0 ? ['', ...reasons] : []),
    ...(failures.length > 0 ? ['', 'Failed pulls:', ...failures] : []),
    '',
    `Setup: fleet ${fmtS(setup.fleetS)} s, origin registry ${fmtS(setup.originS)} s, image generate ` +
      `${fmtS(setup.imageGenerateS)} s + push ${fmtS(setup.imagePushS)} s (total ${fmtS(setup.totalS)} s). ` +
      `Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, kernel ${r.machine.kernel}` +
      (r.machine.loadAverage === undefined
        ? '.'
        : `, load average ${r.machine.loadAverage.map((l) => l.toFixed(2)).join(' ')} at the start.`),
    '',
    ...r.notes.map((n) => `- ${n}`),
    '',
  ].join('\n')
}
