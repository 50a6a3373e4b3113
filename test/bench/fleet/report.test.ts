import { describe, expect, it } from 'vitest'
import { parseBenchArgs, type BenchConfig } from '../../../bench/fleet/config.ts'
import type { LinkCounters } from '../../../bench/fleet/counters.ts'
import type { BenchImage } from '../../../bench/fleet/image.ts'
import { planFleet } from '../../../bench/fleet/netns.ts'
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
