import type { ScenarioName } from './config.ts'
import { configLine, type Report, type ScenarioReport } from './report.ts'

/** Hand-written SVG: no plotting dependency, and it renders the same in a browser and in rsvg-convert. */

const WIDTH = 1100
const HEIGHT = 550
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif'

const SCENARIO_COLOURS: Readonly<Record<ScenarioName, string>> = {
  direct: '#d62728',
  cache: '#ff7f0e',
  'shoal-cold': '#1f77b4',
  'shoal-preheated': '#2ca02c',
  'shoal-sites': '#8c564b',
  'shoal-seederless': '#9467bd',
}

const SOURCES = [
  { key: 'origin', label: 'origin', colour: '#6b4c3b' },
  { key: 'cache', label: 'pull-through cache', colour: '#9467bd' },
  { key: 'seeder', label: 'seeder', colour: '#17becf' },
  { key: 'nodes', label: 'nodes (peer to peer)', colour: '#bcbd22' },
] as const

export function escapeXml(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')
}

/** A round tick step (1, 2 or 5 × 10^k) giving about `count` ticks up to `max`. */
export function niceStep(max: number, count = 5): number {
  if (!(max > 0)) return 1
  const raw = max / count
  const p = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p
  return 10 * p
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 1 ? 2 : 1).replace(/\.?0+$/, '')
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escapeXml(s)}</text>`
}

interface Box {
  readonly x: number
  readonly y: number
  readonly w: number
  readonly h: number
}

/** Completion-time CDF: one step line per scenario, T* of each as a dashed vertical line. */
function cdfPanel(r: Report, box: Box): string[] {
  const out: string[] = []
  const ran = r.scenarios.filter((s) => s.completion !== undefined)
  const tMax = Math.max(1, ...ran.map((s) => s.completion?.max ?? 0), ...r.scenarios.map((s) => s.bound.seconds))
  const step = niceStep(tMax * 1.05)
  const xMax = Math.ceil((tMax * 1.05) / step) * step
  const X = (t: number) => box.x + (t / xMax) * box.w
  const Y = (f: number) => box.y + box.h - f * box.h
  out.push(text(box.x, box.y - 14, 'Completion time per node (CDF)', 'font-size="15" font-weight="bold"'))
  // grid and axes
  for (let t = 0; t <= xMax + 1e-9; t += step) {
    out.push(`<line x1="${X(t)}" y1="${box.y}" x2="${X(t)}" y2="${box.y + box.h}" stroke="#e6e6e6"/>`)
    out.push(text(X(t), box.y + box.h + 16, fmt(t), 'font-size="12" text-anchor="middle"'))
  }
  for (let f = 0; f <= 1.0001; f += 0.25) {
    out.push(`<line x1="${box.x}" y1="${Y(f)}" x2="${box.x + box.w}" y2="${Y(f)}" stroke="#e6e6e6"/>`)
    out.push(text(box.x - 6, Y(f) + 4, `${Math.round(f * 100)}%`, 'font-size="12" text-anchor="end"'))
  }
  out.push(`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" fill="none" stroke="#555"/>`)
  out.push(
    text(
      box.x + box.w / 2,
      box.y + box.h + 34,
      'seconds since the rollout started',
      'font-size="13" text-anchor="middle"',
    ),
  )
  out.push(
    text(
      box.x - 46,
      box.y + box.h / 2,
      'nodes done',
      `font-size="13" text-anchor="middle" transform="rotate(-90 ${box.x - 46} ${box.y + box.h / 2})"`,
    ),
  )
  // T* markers; scenarios whose bounds coincide share one labelled line.
  const groups: { t: number; names: string[]; colour: string }[] = []
  for (const s of r.scenarios) {
    const g = groups.find((x) => Math.abs(X(x.t) - X(s.bound.seconds)) < 2)
    if (g === undefined)
      groups.push({
        t: s.bound.seconds,
        names: [s.name],
        colour: SCENARIO_COLOURS[s.name],
      })
    else {
      g.names.push(s.name)
      g.colour = '#444'
    }
  }
  groups.sort((a, b) => a.t - b.t)
  const labels: string[] = []
  for (const [i, g] of groups.entries()) {
    const x = X(g.t)
    out.push(
      `<line x1="${x.toFixed(1)}" y1="${box.y}" x2="${x.toFixed(1)}" y2="${box.y + box.h}" stroke="${g.colour}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    )
    const label = `T* ${g.names.join(', ')} = ${fmt(Number(g.t.toFixed(1)))} s`
    // A white halo keeps the label readable where a CDF line crosses it.
    const halo = 'stroke="white" stroke-width="3" paint-order="stroke"'
    labels.push(text(x + 4, box.y + 14 + i * 15, label, `font-size="11" fill="${g.colour}" ${halo}`))
  }
  // CDF steps: a node's share of the fleet is added when it finishes; failed nodes never add theirs.
  for (const s of ran) {
    const times = s.nodes
      .filter((n) => n.ok)
      .map((n) => n.seconds)
      .sort((a, b) => a - b)
    const n = s.nodes.length
    let d = `M ${X(0).toFixed(1)} ${Y(0).toFixed(1)}`
    times.forEach((t, i) => {
      d += ` H ${X(t).toFixed(1)} V ${Y((i + 1) / n).toFixed(1)}`
    })
    out.push(`<path d="${d}" fill="none" stroke="${SCENARIO_COLOURS[s.name]}" stroke-width="2.5"/>`)
  }
  out.push(...labels)
  // Legend under the axis, two columns, so it never hides a line.
  r.scenarios.forEach((s, i) => {
    const x = box.x + (i % 2) * (box.w / 2)
    const y = box.y + box.h + 58 + Math.floor(i / 2) * 18
    const colour = s.completion === undefined ? '#aaa' : SCENARIO_COLOURS[s.name]
    out.push(`<line x1="${x}" y1="${y - 4}" x2="${x + 22}" y2="${y - 4}" stroke="${colour}" stroke-width="2.5"/>`)
    out.push(text(x + 28, y, legendText(s), `font-size="12" fill="${s.completion === undefined ? '#888' : '#222'}"`))
  })
  const ty = box.y + box.h + 58 + Math.ceil(r.scenarios.length / 2) * 18
  out.push(
    `<line x1="${box.x}" y1="${ty - 4}" x2="${box.x + 22}" y2="${ty - 4}" stroke="#444" stroke-width="1.5" stroke-dasharray="6 4"/>`,
  )
  out.push(
    text(box.x + 28, ty, 'T*: fluid lower bound of the scenario (no system can finish sooner)', 'font-size="12"'),
  )
  return out
}

function legendText(s: ScenarioReport): string {
  if (s.status === 'unavailable') return `${s.title}: not available`
  if (s.completion === undefined) {
    return s.nodes.length > 0 ? `${s.title}: all ${s.nodes.length} pulls failed` : `${s.title}: failed`
  }
  const failed = s.failedNodes > 0 ? `, ${s.failedNodes} failed` : ''
  return `${s.title}: max ${fmt(Number(s.completion.max.toFixed(1)))} s${failed}`
}

/** Bytes each kind of host sent during the scenario (setup + rollout), stacked, in units of the image size S. */
function bytesPanel(r: Report, box: Box): string[] {
  const out: string[] = []
  const S = r.image.bytes
  const withBytes = r.scenarios.filter((s) => s.bytes !== undefined)
  const totals = withBytes.map((s) => SOURCES.reduce((n, src) => n + (s.bytes?.scenario[src.key].payload ?? 0), 0) / S)
  const top = Math.max(r.config.nodes * 1.1, ...totals)
  const step = niceStep(top)
  const yMax = Math.ceil(top / step) * step
  const Y = (v: number) => box.y + box.h - (v / yMax) * box.h
  out.push(text(box.x, box.y - 14, 'Bytes sent, by source (× image size S)', 'font-size="15" font-weight="bold"'))
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    out.push(`<line x1="${box.x}" y1="${Y(v)}" x2="${box.x + box.w}" y2="${Y(v)}" stroke="#e6e6e6"/>`)
    out.push(text(box.x - 6, Y(v) + 4, fmt(v), 'font-size="12" text-anchor="end"'))
  }
  out.push(`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" fill="none" stroke="#555"/>`)
  const nLine = Y(r.config.nodes)
  out.push(
    `<line x1="${box.x}" y1="${nLine}" x2="${box.x + box.w}" y2="${nLine}" stroke="#999" stroke-dasharray="3 3"/>`,
  )
  const slot = box.w / Math.max(1, r.scenarios.length)
  const barW = Math.min(56, slot * 0.55)
  r.scenarios.forEach((s, i) => {
    const cx = box.x + slot * (i + 0.5)
    out.push(text(cx, box.y + box.h + 16, shortTitle(s), 'font-size="12" text-anchor="middle"'))
    if (s.bytes === undefined) {
      out.push(
        text(
          cx,
          box.y + box.h - 8,
          s.status === 'unavailable' ? 'n/a' : 'failed',
          'font-size="12" text-anchor="middle" fill="#888"',
        ),
      )
      return
    }
    let acc = 0
    for (const src of SOURCES) {
      const v = s.bytes.scenario[src.key].payload / S
      if (v <= 0) continue
      const y1 = Y(acc + v)
      const h = Y(acc) - y1
      out.push(
        `<rect x="${(cx - barW / 2).toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(0, h).toFixed(1)}" fill="${src.colour}"/>`,
      )
      acc += v
    }
    const origin = s.bytes.scenario.origin.payload / S
    out.push(
      text(
        cx,
        Y(acc) - 6,
        `origin ${fmt(Number(origin.toFixed(2)))}×S`,
        'font-size="11" text-anchor="middle" font-weight="bold"',
      ),
    )
  })
  SOURCES.forEach((src, i) => {
    const x = box.x + (i % 2) * (box.w / 2)
    const y = box.y + box.h + 36 + Math.floor(i / 2) * 16
    out.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${src.colour}"/>`)
    out.push(text(x + 17, y, src.label, 'font-size="12"'))
  })
  // Labelled down here: a label on the line itself would collide with the bars.
  const ny = box.y + box.h + 36 + Math.ceil(SOURCES.length / 2) * 16
  out.push(
    `<line x1="${box.x}" y1="${ny - 4}" x2="${box.x + 12}" y2="${ny - 4}" stroke="#999" stroke-dasharray="3 3"/>`,
  )
  out.push(text(box.x + 17, ny, `N×S: what the ${r.config.nodes} nodes receive in all`, 'font-size="12"'))
  return out
}

function shortTitle(s: ScenarioReport): string {
  switch (s.name) {
    case 'direct':
      return 'direct'
    case 'cache':
      return 'pull-through'
    case 'shoal-cold':
      return 'shoal cold'
    case 'shoal-preheated':
      return 'shoal preheated'
    case 'shoal-sites':
      return 'shoal sites'
    case 'shoal-seederless':
      return 'shoal, no seeder'
  }
}

export function renderSvg(r: Report): string {
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="${FONT}">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    text(20, 26, `Shoal fleet benchmark (${r.config.mode}), ${r.startedAt}`, 'font-size="17" font-weight="bold"'),
    text(20, 46, configLine(r), 'font-size="13" fill="#333"'),
    ...cdfPanel(r, { x: 80, y: 90, w: 560, h: 340 }),
    ...bytesPanel(r, { x: 730, y: 90, w: 340, h: 340 }),
    '</svg>',
  ]
  return `${parts.join('\n')}\n`
}
