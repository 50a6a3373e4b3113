import type { Report, ScenarioReport } from '../fleet/report.ts'
import type { SimReport } from './report.ts'

/**
 * Agreement the simulator claims with the real fleet: completion-time percentiles within ±20% (the fleet's
 * own run-to-run spread on 2 busy cores is about ±10%, and the model leaves out CPU, TCP slow start and the
 * client's own work), origin bytes within 2% (both count payload bytes of the origin's link).
 */
export const TIME_TOLERANCE = 0.2
export const ORIGIN_BYTES_TOLERANCE = 0.02

export interface Comparison {
  readonly scenario: string
  readonly metric: string
  readonly real: number
  readonly sim: number
  /** (sim - real) / real */
  readonly diff: number
  readonly tolerance: number
  readonly ok: boolean
}

/** Only what a real fleet report must hold for a comparison: checked, so a wrong file says so plainly. */
export function parseFleetReport(text: string): Report {
  const doc = JSON.parse(text) as Partial<Report>
  if (doc.version !== 1 || !Array.isArray(doc.scenarios) || doc.config === undefined || doc.image === undefined) {
    throw new TypeError('not a fleet report.json (want version 1 with config, image and scenarios)')
  }
  if (!Array.isArray(doc.image.blobs) || typeof doc.image.bytes !== 'number') {
    throw new TypeError('fleet report.json: image.blobs and image.bytes are missing')
  }
  return doc as Report
}

function pair(scenario: string, metric: string, real: number, sim: number, tolerance: number): Comparison {
  const diff = real === 0 ? (sim === 0 ? 0 : Number.POSITIVE_INFINITY) : (sim - real) / real
  return { scenario, metric, real, sim, diff, tolerance, ok: Math.abs(diff) <= tolerance }
}

export function compareReports(real: Report, sim: SimReport): Comparison[] {
  const out: Comparison[] = []
  for (const s of sim.scenarios) {
    const r: ScenarioReport | undefined = real.scenarios.find((x) => x.name === s.name)
    if (r?.completion === undefined || s.completion === undefined) continue
    for (const k of ['p50', 'p90', 'p99', 'max'] as const) {
      out.push(pair(s.name, `${k} s`, r.completion[k], s.completion[k], TIME_TOLERANCE))
    }
    if (r.ratios !== undefined && s.ratios !== undefined) {
      out.push(
        pair(
          s.name,
          'origin bytes / S',
          r.ratios.originBytesOverImage,
          s.ratios.originBytesOverImage,
          ORIGIN_BYTES_TOLERANCE,
        ),
      )
    }
  }
  return out
}

export function comparisonMarkdown(rows: readonly Comparison[]): string {
  const lines = ['| scenario | metric | real | sim | sim vs real | tolerance | agrees |', `|${' --- |'.repeat(7)}`]
  for (const c of rows) {
    lines.push(
      `| ${c.scenario} | ${c.metric} | ${c.real.toFixed(3)} | ${c.sim.toFixed(3)} | ${(c.diff * 100).toFixed(1)}% | ` +
        `±${(c.tolerance * 100).toFixed(0)}% | ${c.ok ? 'yes' : 'NO'} |`,
    )
  }
  if (rows.length === 0) lines.push('| – | no scenario both ran to completion | | | | | |')
  return `${lines.join('\n')}\n`
}
