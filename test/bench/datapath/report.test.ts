import { describe, expect, it } from 'vitest'
import {
  cpuPerGiB,
  fmt,
  idleSummary,
  markdownSection,
  ratios,
  type RowRun,
  type RunResult,
  spread,
  summarize,
} from '../../../bench/datapath/report.ts'

const GiB = 1024 ** 3
const row = (id: string, mbps: number, cpu: Record<string, number>, clients: RowRun['clients'] = 'single'): RowRun => ({
  id,
  label: id,
  clients,
  bytes: GiB,
  seconds: GiB / 1e6 / mbps,
  ttfbS: 0.01,
  processes: Object.entries(cpu).map(([role, cpuS]) => ({
    role,
    shoal: !['origin', 'floor'].includes(role),
    cpuS,
    peakRssBytes: 100 * 1024 * 1024,
  })),
})

const run = (scale: number): RunResult => ({
  rows: [
    row('origin', 1000 * scale, { origin: 0.5 }),
    row('floor', 800 * scale, { floor: 1 }),
    row('warm', 720 * scale, { agent: 1.5 }),
    row('origin-16', 2000 * scale, { origin: 0.5 }, 'concurrent'),
    row('floor-16', 1600 * scale, { floor: 0.8 }, 'concurrent'),
    row('warm-16', 800 * scale, { agent: 1.6 }, 'concurrent'),
  ],
  idle: [{ role: 'agent', rssBytes: 100 * 1024 * 1024 * scale }],
})

describe('spread', () => {
  it('gives min, median and max; an even count takes the mean of the middle two', () => {
    expect(spread([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3, n: 3 })
    expect(spread([4, 1, 2, 3])).toEqual({ min: 1, median: 2.5, max: 4, n: 4 })
  })
  it('ignores NaN and says when nothing is left', () => {
    expect(spread([Number.NaN, 5]).median).toBe(5)
    expect(spread([]).n).toBe(0)
  })
})

describe('ratios', () => {
  it('divides by the origin and the floor of the same run, with as many clients', () => {
    const r = run(1)
    const warm = ratios(
      r.rows.find((x) => x.id === 'warm')!,
      r,
    )
    expect(warm.toOrigin).toBeCloseTo(0.72)
    expect(warm.toFloor).toBeCloseTo(0.9)
    expect(warm.cpuToFloor['agent']).toBeCloseTo(1.5)
    const many = ratios(
      r.rows.find((x) => x.id === 'warm-16')!,
      r,
    )
    expect(many.toOrigin).toBeCloseTo(0.4)
    expect(many.toFloor).toBeCloseTo(0.5)
    expect(many.cpuToFloor['agent']).toBeCloseTo(2)
  })
  it('is NaN without the reference row', () => {
    const r: RunResult = { rows: [row('warm', 100, { agent: 1 })], idle: [] }
    expect(ratios(r.rows[0]!, r).toFloor).toBeNaN()
  })
})

describe('summarize', () => {
  it('takes each ratio within a run, then the spread over runs', () => {
    // The machine twice as fast in run 2: the ratios do not move.
    const [, , warm] = summarize([run(1), run(2), run(0.5)])
    expect(warm!.toFloor.min).toBeCloseTo(0.9)
    expect(warm!.toFloor.max).toBeCloseTo(0.9)
    expect(warm!.mbPerS).toEqual({ min: 360, median: 720, max: 1440, n: 3 })
    expect(warm!.cpuPerGiB['agent']!.median).toBeCloseTo(1.5)
  })
  it('summarises idle RSS per role in MiB', () => {
    expect(idleSummary([run(1), run(2)])['agent']).toEqual({ min: 100, median: 150, max: 200, n: 2 })
  })
})

describe('cpuPerGiB and fmt', () => {
  it('scales CPU seconds to a GiB delivered', () => {
    expect(cpuPerGiB(1, GiB / 4)).toBe(4)
  })
  it('prints a single value alone and a spread as median (min–max)', () => {
    expect(fmt(spread([1]))).toBe('1.00')
    expect(fmt(spread([1, 2, 3]), 1)).toBe('2.0 (1.0–3.0)')
    expect(fmt(spread([]))).toBe('–')
  })
})

describe('markdownSection', () => {
  it('has a row per path with its ratios, and the command', () => {
    const text = markdownSection(
      { title: 't', command: 'npm run bench:datapath', when: 'now', facts: ['f'] },
      [run(1)],
      [],
    )
    expect(text).toContain('    npm run bench:datapath')
    expect(text).toMatch(/\| warm \| 720 \| 0\.72 \| 0\.90 \| agent 1\.50 \| agent 1\.50 \| agent 100 \| 10\.0 \|/)
    expect(text).toContain('- idle RSS, agent: 100 MiB')
  })
})
