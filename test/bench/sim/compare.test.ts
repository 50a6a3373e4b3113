import { describe, expect, it } from 'vitest'
import type { Report } from '../../../bench/fleet/report.ts'
import { compareReports, comparisonMarkdown, parseFleetReport, TIME_TOLERANCE } from '../../../bench/sim/compare.ts'
import { parseSimArgs } from '../../../bench/sim/config.ts'
import { buildSimReport, simSummaryMarkdown, simSvg, sweepMarkdown } from '../../../bench/sim/report.ts'
import { simulate } from '../../../bench/sim/run.ts'
import type { SimParams } from '../../../bench/sim/world.ts'

const MIB = 1024 * 1024

function simReport() {
  const cfg = parseSimArgs(['--quick', '--nodes', '3'])
  if (cfg === 'help') throw new Error('help')
  const params: SimParams = { ...cfg.base, nodes: 3, blobBytes: [600, 2 * MIB], manifestBytes: 800, limitMs: 600_000 }
  const runs = [simulate('direct', params), simulate('shoal-preheated', params)]
  return buildSimReport({ startedAt: 'a', finishedAt: 'b', command: 'test', cfg, params, runs })
}

describe('sim report and comparison', () => {
  it('builds the fleet report format, with T*, ratios and the simulator section', () => {
    const r = simReport()
    expect(r.version).toBe(1)
    const shoal = r.scenarios.find((s) => s.name === 'shoal-preheated')!
    expect(shoal.completion?.count).toBe(3)
    expect(shoal.ratios?.p99OverBound).toBeGreaterThanOrEqual(1)
    expect(r.scenarios.find((s) => s.name === 'cache')?.status).toBe('unavailable')
    expect(r.simulator.scenarios.find((s) => s.name === 'shoal-preheated')?.dht?.provides).toBe(6)
    expect(simSummaryMarkdown(r)).toContain('# Simulated fleet')
    expect(simSvg(r)).toContain('SIMULATED')
    expect(sweepMarkdown([r])).toContain('| 3 | shoal, preheated seeder |')
  })

  it('agrees with itself, and flags a real run 30% slower and one with 5% more origin bytes', () => {
    const sim = simReport()
    const same = compareReports(JSON.parse(JSON.stringify(sim)) as Report, sim)
    expect(same.length).toBeGreaterThan(0)
    expect(same.every((c) => c.ok)).toBe(true)
    const slower = JSON.parse(JSON.stringify(sim)) as {
      scenarios: { name: string; completion?: Record<string, number>; ratios?: Record<string, number> }[]
    }
    const s = slower.scenarios.find((x) => x.name === 'shoal-preheated')!
    s.completion!.p99 = s.completion!.p99! * (1 + TIME_TOLERANCE + 0.1)
    s.ratios!.originBytesOverImage = s.ratios!.originBytesOverImage! * 1.05
    const rows = compareReports(slower as unknown as Report, sim)
    const bad = rows.filter((c) => !c.ok).map((c) => `${c.scenario} ${c.metric}`)
    expect(bad).toEqual(['shoal-preheated p99 s', 'shoal-preheated origin bytes / S'])
    expect(comparisonMarkdown(rows)).toContain('| NO |')
  })

  it('refuses a file that is not a fleet report', () => {
    expect(() => parseFleetReport('{"hello":1}')).toThrow(/not a fleet report/)
  })
})
