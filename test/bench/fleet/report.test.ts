import { describe, expect, it } from 'vitest'
import { parseBenchArgs, type BenchConfig } from '../../../bench/fleet/config.ts'
import type { LinkCounters } from '../../../bench/fleet/counters.ts'
import type { BenchImage } from '../../../bench/fleet/image.ts'
import { planFleet, planSiteFleet } from '../../../bench/fleet/netns.ts'
import {
  buildReport,
  fmtBytes,
  type ReportInput,
  type ScenarioMeasurement,
  summaryMarkdown,
} from '../../../bench/fleet/report.ts'

const S = 1_000_000
const config = parseBenchArgs([
  '--quick',
  '--nodes',
  '2',
  '--origin-up',
  '40',
  '--node-up',
  '40',
  '--node-down',
  '40',
]) as BenchConfig
const hosts = planFleet(2, config.links)
const image: BenchImage = {
  rootDigest: `sha256:${'a'.repeat(64)}`,
  rootMediaType: 'application/vnd.oci.image.manifest.v1+json',
  manifestBytes: 1000,
  blobs: [{ digest: `sha256:${'b'.repeat(64)}`, size: S - 1000, mediaType: 'application/vnd.oci.image.layer.v1.tar' }],
  generateS: 0.1,
  pushS: 0.2,
  originRef: '169.254.1.1:5000/bench/sample:v1',
  name: 'bench/sample',
  tag: 'v1',
  bytes: S,
}

/** Counters in which `host` sent `bytes` in full 1514-byte frames (1448 payload bytes each). */
function sending(perHost: Record<string, number>): Record<string, LinkCounters> {
  const out: Record<string, LinkCounters> = {}
  for (const h of hosts) {
    const payload = perHost[h.name] ?? 0
    const packets = Math.ceil(payload / 1448)
    out[h.name] = { txBytes: payload + packets * 66, txPackets: packets, rxBytes: 0, rxPackets: 0 }
  }
  return out
}

const cpu = { backgroundBusy: 0.1, loadAverage: [3.25, 2, 1], rollout: { busy: 0.6, perCore: [0.7, 0.5] } }

function measured(name: 'direct' | 'cache', seconds: number[], bytes: Record<string, number>): ScenarioMeasurement {
  const counters = sending(bytes)
  return {
    name,
    title: name,
    status: 'ok',
    setupS: 0.5,
    nodes: seconds.map((s, i) => ({ node: `node-${i + 1}`, ok: true, seconds: s })),
    rolloutCounters: counters,
    scenarioCounters: counters,
    cpu,
    timeline: [],
  }
}

const input: ReportInput = {
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:05:00.000Z',
  command: 'npm run bench -- --quick --nodes 2',
  machine: {
    cpus: 2,
    cpuModel: 'test cpu',
    memoryBytes: 1,
    kernel: '6.1',
    node: 'v24',
    tools: {},
    loadAverage: [7.5, 6, 5],
  },
  config,
  image,
  hosts,
  setup: { fleetS: 1, originS: 0.1, imageGenerateS: 0.1, imagePushS: 0.2, totalS: 2 },
  scenarios: [
    measured('direct', [3, 4], { origin: 2 * S }),
    measured('cache', [1.5, 2], { origin: 1.02 * S, cache: 2 * S }),
    {
      name: 'shoal-cold',
      title: 'shoal, cold',
      status: 'unavailable',
      reason: '`shoal seeder` is not there yet',
      nodes: [],
    },
    {
      name: 'shoal-preheated',
      title: 'shoal, preheated seeder',
      status: 'ok',
      nodes: [
        { node: 'node-1', ok: true, seconds: 1 },
        { node: 'node-2', ok: false, seconds: 9, error: 'exit 1: boom' },
      ],
      rolloutCounters: sending({ seeder: S }),
      scenarioCounters: sending({ seeder: S, origin: S }),
      cpu,
    },
  ],
}

describe('buildReport', () => {
  const report = buildReport(input)
  const [direct, cache, cold, preheated] = report.scenarios

  it('keeps the configuration and the image', () => {
    expect(report.config).toBe(config)
    expect(report.image).toMatchObject({ bytes: S, ref: image.originRef })
    expect(report.hosts.map((h) => h.role)).toEqual(['origin', 'cache', 'seeder', 'node', 'node'])
  })

  it('computes completion percentiles and ratios to T*', () => {
    expect(direct?.completion).toMatchObject({ p50: 3, max: 4, count: 2 })
    expect(direct?.bound.seconds).toBeCloseTo(S / 5e6)
    expect(direct?.ratios?.maxOverBound).toBeCloseTo(4 / (S / 5e6))
    expect(direct?.ratios?.p99OverBound).toBeCloseTo(4 / 0.2)
  })

  it('counts origin bytes from the link, headers taken off', () => {
    expect(direct?.bytes?.scenario.origin.payload).toBe(2 * S)
    expect(direct?.ratios?.originBytesOverImage).toBe(2)
    expect(direct?.ratios?.originWireBytesOverImage).toBeGreaterThan(2)
    expect(cache?.ratios?.originBytesOverImage).toBeCloseTo(1.02)
    expect(cache?.bytes?.rollout.cache.payload).toBe(2 * S)
  })

  it('gives speedups against direct and the pull-through cache', () => {
    expect(direct?.ratios?.speedupVsDirect).toBe(1)
    expect(cache?.ratios?.speedupVsDirect).toBe(2)
    expect(direct?.ratios?.speedupVsCache).toBe(0.5)
  })

  it('reports an unavailable scenario with its reason and bound but no numbers', () => {
    expect(cold).toMatchObject({ status: 'unavailable', reason: '`shoal seeder` is not there yet', failedNodes: 0 })
    expect(cold?.bound.seconds).toBeGreaterThan(0)
    expect(cold?.completion).toBeUndefined()
    expect(cold?.ratios).toBeUndefined()
  })

  it('gives no speedup for a rollout with failed nodes, and counts a preheat in origin bytes', () => {
    expect(preheated?.failedNodes).toBe(1)
    expect(preheated?.completion?.count).toBe(1)
    expect(preheated?.ratios?.speedupVsDirect).toBeNull()
    expect(preheated?.ratios?.originBytesOverImage).toBe(1)
    expect(preheated?.bytes?.rollout.origin.payload).toBe(0)
  })

  it('survives a JSON round trip unchanged', () => {
    expect(JSON.parse(JSON.stringify(report))).toEqual(report)
  })
})

describe('summaryMarkdown', () => {
  const md = summaryMarkdown(buildReport(input))

  it('has one table row per scenario with the headline numbers', () => {
    const rows = md
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| scenario') && !l.startsWith('| ---'))
    expect(rows).toHaveLength(4)
    expect(rows[0]).toContain('| direct | ok | 3.0 | 4.0 | 4.0 | 4.0 | 0.2 (first-copy) | 20.00× |')
    expect(rows[0]).toContain('| 2.00× |')
    expect(rows[0]).toContain('| 60% (10%, 3.3) |')
    expect(rows[3]).toContain('1 of 2 failed')
  })

  it('says why a scenario did not run and which pulls failed', () => {
    expect(md).toContain('- shoal, cold: not available: `shoal seeder` is not there yet')
    expect(md).toContain('- shoal, preheated seeder, node-2: exit 1: boom')
    expect(md).toContain('`npm run bench -- --quick --nodes 2`')
  })

  it("records the machine's load average, so a run starved by other work shows", () => {
    expect(md).toContain('load average 7.50 6.00 5.00 at the start.')
  })
})

describe('fmtBytes', () => {
  it('uses binary units', () => {
    expect(fmtBytes(512)).toBe('512 B')
    expect(fmtBytes(32 * 1024 * 1024)).toBe('32.0 MiB')
    expect(fmtBytes(1.5 * 1024 ** 3)).toBe('1.5 GiB')
  })
})

describe('edge-site report', () => {
  const siteConfig = parseBenchArgs([
    '--sites',
    '2',
    '--site-nodes',
    '2',
    '--wan',
    '8',
    '--origin-up',
    '200',
    '--seeder-up',
    '200',
    '--cache-up',
    '200',
  ]) as BenchConfig
  const { hosts: siteHosts } = planSiteFleet(siteConfig.sites!, siteConfig.links)
  const wanBps = 1e6
  /** A WAN link that carried `into` payload bytes into its site and `out` out of it, in full frames. */
  const wan = (into: number, out: number): LinkCounters => {
    const pin = Math.ceil(into / 1448)
    const pout = Math.ceil(out / 1448)
    return { rxBytes: into + pin * 66, rxPackets: pin, txBytes: out + pout * 66, txPackets: pout }
  }
  const nodes = (seconds: number[], failed: string[] = []) =>
    seconds.map((s, i) => {
      const node = `node-${i + 1}`
      return failed.includes(node) ? { node, ok: false, seconds: s, error: 'exit 1' } : { node, ok: true, seconds: s }
    })
  const counters = (a: LinkCounters, b: LinkCounters) => ({ 'wan:site-0': a, 'wan:site-1': b })
  const m = (
    name: 'direct' | 'shoal-cold' | 'shoal-sites',
    n: ScenarioMeasurement['nodes'],
    c: Record<string, LinkCounters>,
  ) => ({
    name,
    title: name,
    status: 'ok' as const,
    nodes: n,
    rolloutCounters: c,
    scenarioCounters: c,
  })
  const report = buildReport({
    ...input,
    config: siteConfig,
    hosts: siteHosts,
    scenarios: [
      m('direct', nodes([60, 62, 61, 63]), counters(wan(2 * S, 0), wan(2 * S, 0))),
      m('shoal-cold', nodes([40, 41, 42, 44]), counters(wan(1.5 * S, 0.25 * S), wan(1.25 * S, 0.5 * S))),
      m('shoal-sites', nodes([30, 31, 9, 9], ['node-2']), counters(wan(S, 0), wan(1.02 * S, 0.01 * S))),
    ],
  })
  const [direct, flat, sited] = report.scenarios

  it('gives WAN bytes into and out of each site over S, payload from the kernel counters', () => {
    expect(direct?.sites?.wan.map((w) => [w.site, w.intoOverImage, w.outOverImage])).toEqual([
      ['site-0', 2, 0],
      ['site-1', 2, 0],
    ])
    expect(flat?.sites?.wan.map((w) => w.intoOverImage)).toEqual([1.5, 1.25])
    expect(flat?.sites?.wan.map((w) => w.outOverImage)).toEqual([0.25, 0.5])
    expect(flat?.sites?.worstIntoOverImage).toBe(1.5)
    expect(flat?.sites?.wan[0]?.into.wire).toBeGreaterThan(1.5 * S)
  })

  it('puts the slowest node against T*_site = S / WAN, with the term that binds', () => {
    const b = flat!.sites!.bound
    // --wan 8: 1 MB/s each way; U_core (origin + seeder) 400 mbit: the WAN download binds.
    expect(b.limitedBy).toBe('wan-download')
    expect(b.seconds).toBeCloseTo(S / wanBps)
    expect(b.coreUpMbit).toBe(400)
    expect(b.wanMbit).toBe(8)
    expect(direct?.sites?.bound.coreUpMbit).toBe(200)
    expect(flat?.sites?.maxOverSiteBound).toBeCloseTo(44 / (S / wanBps))
    expect(direct?.sites?.maxOverSiteBound).toBeCloseTo(63 / (S / wanBps))
  })

  it('counts verified nodes per site and gives no ratio when a node failed', () => {
    expect(sited?.sites?.wan.map((w) => `${w.verified}/${w.nodes}`)).toEqual(['1/2', '2/2'])
    expect(sited?.sites?.wan[0]?.slowestS).toBeUndefined()
    expect(sited?.sites?.wan[1]?.slowestS).toBe(9)
    expect(sited?.sites?.maxOverSiteBound).toBeUndefined()
  })

  it('marks each node with its site in the host list', () => {
    expect(report.hosts.filter((h) => h.role === 'node').map((h) => h.site)).toEqual([
      'site-0',
      'site-0',
      'site-1',
      'site-1',
    ])
  })

  it('prints a site table: per scenario, WAN in and out per site, worst site, slowest / T*_site', () => {
    const md = summaryMarkdown(report)
    expect(md).toContain('N=4 (2 sites × 2, WAN 8 mbit)')
    expect(md).toContain('Edge sites: 2 × 2 nodes, each site behind a 8 mbit WAN link.')
    expect(md).toContain('| scenario | nodes verified | WAN into site / S (site-0, site-1) |')
    const tS = (S / wanBps).toFixed(1)
    expect(md).toContain(
      `| direct | 4 of 4 | 2.00, 2.00 | 0.00, 0.00 | 2.00 | 63.0 | ${tS} (wan-download) | ${(63 / (S / wanBps)).toFixed(2)}× |`,
    )
    expect(md).toContain(`| shoal-cold | 4 of 4 | 1.50, 1.25 | 0.25, 0.50 | 1.50 | 44.0 |`)
    expect(md).toContain(`| shoal-sites | 3 of 4 | 1.00, 1.02 | 0.00, 0.01 | 1.02 | 30.0 | ${tS} (wan-download) | – |`)
  })

  it('reports when a WAN cut really happened', () => {
    const cut = { site: 'site-0', atS: 5, forS: 20, downAtS: 5.1, upAtS: 25.2 }
    const r = buildReport({
      ...input,
      config: { ...siteConfig, wanCut: { site: 'site-0', atS: 5, forS: 20 } },
      hosts: siteHosts,
      scenarios: [{ ...m('shoal-sites', nodes([30, 31, 9, 9]), counters(wan(S, 0), wan(S, 0))), wanCut: cut }],
    })
    expect(r.scenarios[0]?.sites?.wanCut).toEqual(cut)
    const md = summaryMarkdown(r)
    expect(md).toContain("site-0's WAN cut 5 s into each rollout for 20 s.")
    expect(md).toContain('- shoal-sites: site-0 WAN down at 5.1 s, up at 25.2 s')
  })

  it('has no site columns in a flat run', () => {
    expect(buildReport(input).scenarios.every((s) => s.sites === undefined)).toBe(true)
    expect(summaryMarkdown(buildReport(input))).not.toContain('Edge sites')
  })
})
