import { readFile } from 'node:fs/promises'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Rig, startRig } from '../agent/harness.ts'

const DASHBOARD = new URL('../../deploy/grafana/shoal.json', import.meta.url)
/** Labels Prometheus adds to every scraped series, and the bucket bound of histograms. */
const SCRAPE_LABELS = new Set(['job', 'instance'])

interface Panel {
  title: string
  targets?: { expr: string }[]
  panels?: Panel[]
}

const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[] }
const exprs = (panels: Panel[]): { panel: string; expr: string }[] =>
  panels.flatMap((p) => [...(p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })), ...exprs(p.panels ?? [])])

/** Series names a scrape can hold: counters and gauges by name, histograms by _bucket, _sum and _count. */
function exposedNames(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string]
    if (type === 'histogram' || type === 'summary') {
      for (const suffix of ['_bucket', '_sum', '_count']) out.set(`${name}${suffix}`, name)
    } else out.set(name, name)
  }
  return out
}

let rig: Rig
let scraped: string
beforeAll(async () => {
  rig = await startRig({ extraArgs: ['--metrics-listen', '127.0.0.1:0'] })
  scraped = await (await request(`${rig.agent.metricsUrl}/metrics`)).body.text()
})
afterAll(async () => {
  await rig.stop()
})

describe('deploy/grafana/shoal.json', () => {
  it('has queries', () => {
    expect(exprs(dashboard.panels).length).toBeGreaterThanOrEqual(10)
  })

  it('names only metrics that /metrics really exposes, with labels they really have', () => {
    const exposed = exposedNames(scraped)
    const problems: string[] = []
    for (const { panel, expr } of exprs(dashboard.panels)) {
      const uses = [...expr.matchAll(/\b(shoal_[a-z0-9_]+)(\{[^}]*\})?/g)]
      if (uses.length === 0) problems.push(`${panel}: no shoal metric in ${expr}`)
      for (const [, name, selector] of uses as unknown as [string, string, string | undefined][]) {
        const base = exposed.get(name)
        if (base === undefined) {
          problems.push(`${panel}: ${name} is not exposed`)
          continue
        }
        const metric = rig.agent.metrics.registry.getSingleMetric(base) as unknown as { labelNames?: string[] }
        const labels = new Set([...(metric?.labelNames ?? []), ...SCRAPE_LABELS, ...(base === name ? [] : ['le'])])
        for (const [, label] of (selector ?? '').matchAll(/([a-zA-Z_]+)\s*[=!~]+/g))
          if (!labels.has(label!)) problems.push(`${panel}: ${name} has no label ${label}`)
        for (const [, list] of expr.matchAll(/\bby \(([^)]*)\)/g))
          for (const label of list!.split(',').map((l) => l.trim()))
            if (!labels.has(label) && uses.every(([, n]) => n === name))
              problems.push(`${panel}: ${name} has no label ${label} to sum by`)
      }
    }
    expect(problems).toEqual([])
  })

  it('the check catches a metric that does not exist', () => {
    expect(exposedNames(scraped).has('shoal_bytes_received_total')).toBe(true)
    expect(exposedNames(scraped).has('shoal_dht_lookup_seconds_bucket')).toBe(true)
    expect(exposedNames(scraped).has('shoal_peers_total')).toBe(false)
  })
})
