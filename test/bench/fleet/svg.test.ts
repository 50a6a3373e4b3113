import { describe, expect, it } from 'vitest'
import type { BenchConfig } from '../../../bench/fleet/config.ts'
import { parseBenchArgs } from '../../../bench/fleet/config.ts'
import { planFleet } from '../../../bench/fleet/netns.ts'
import { buildReport } from '../../../bench/fleet/report.ts'
import { escapeXml, niceStep, renderSvg } from '../../../bench/fleet/svg.ts'

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
const S = 1_000_000
const counters = Object.fromEntries(
  hosts.map((h) => [h.name, { txBytes: h.role === 'origin' ? 2 * S : 0, txPackets: 0, rxBytes: 0, rxPackets: 0 }]),
)
const report = buildReport({
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:01:00.000Z',
  command: 'npm run bench -- --quick',
  machine: { cpus: 2, cpuModel: 'cpu', memoryBytes: 1, kernel: 'k', node: 'v24', tools: {} },
  config,
  image: {
    rootDigest: 'sha256:x',
    rootMediaType: 'm',
    manifestBytes: 0,
    blobs: [],
    generateS: 0,
    pushS: 0,
    originRef: 'o/bench/sample:v1',
    name: 'bench/sample',
    tag: 'v1',
    bytes: S,
  },
  hosts,
  setup: { fleetS: 0, originS: 0, imageGenerateS: 0, imagePushS: 0, totalS: 0 },
  scenarios: [
    {
      name: 'direct',
      title: 'direct from origin',
      status: 'ok',
      nodes: [
        { node: 'node-1', ok: true, seconds: 0.3 },
        { node: 'node-2', ok: true, seconds: 0.4 },
      ],
      rolloutCounters: counters,
      scenarioCounters: counters,
    },
    { name: 'cache', title: 'pull-through <cache> & co', status: 'failed', reason: 'x', nodes: [] },
    { name: 'shoal-cold', title: 'shoal, cold', status: 'unavailable', reason: 'not yet', nodes: [] },
  ],
})

describe('renderSvg', () => {
  const svg = renderSvg(report)

  it('is one svg document with balanced tags', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
    expect(svg.trim().endsWith('</svg>')).toBe(true)
    const opened = (svg.match(/<text\b/g) ?? []).length
    expect(opened).toBe((svg.match(/<\/text>/g) ?? []).length)
    expect(svg).not.toMatch(/NaN|undefined|Infinity/)
  })

  it('draws a CDF step line for a scenario that ran and marks every T*', () => {
    expect(svg).toMatch(/<path d="M [\d.]+ [\d.]+ H [\d.]+ V [\d.]+ H [\d.]+ V [\d.]+" fill="none" stroke="#d62728"/)
    expect(svg).toContain('T* direct, cache, shoal-cold = 0.2 s')
    expect(svg).toContain('stroke-dasharray="6 4"')
  })

  it('labels scenarios that did not run, and escapes text', () => {
    expect(svg).toContain('shoal, cold: not available')
    expect(svg).toContain('pull-through &lt;cache&gt; &amp; co: failed')
    expect(svg).toContain('origin 2×S')
  })
})

describe('niceStep and escapeXml', () => {
  it('picks 1, 2 or 5 times a power of ten', () => {
    expect(niceStep(40)).toBe(10)
    expect(niceStep(7)).toBe(2)
    expect(niceStep(0.3)).toBe(0.1)
    expect(niceStep(230)).toBe(50)
    expect(niceStep(0)).toBe(1)
  })

  it('escapes the XML specials', () => {
    expect(escapeXml('a<b>&"c"')).toBe('a&lt;b&gt;&amp;&quot;c&quot;')
  })
})
