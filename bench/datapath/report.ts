/**
 * The data-path report: per run, each path's throughput as a ratio to the origin and to the Node floor measured in
 * the same run, CPU seconds per GiB and peak RSS of each process on the path, time to first byte; over runs, the
 * min / median / max of each. Pure: measurements in, numbers and Markdown out.
 */

const GiB = 1024 ** 3
const MiB = 1024 ** 2

/** Which references a row is compared with: one client against one, 16 concurrent against 16. */
export type Clients = 'single' | 'concurrent'

export interface ProcessCost {
  /** `agent`, `seeder`, `sender`, `origin (distribution)`, `floor (node:http)` … */
  readonly role: string
  /** Whether it is a Shoal process (the ones the CPU and memory bounds are about). */
  readonly shoal: boolean
  readonly cpuS: number
  readonly peakRssBytes: number
}

/** One path measured once. */
export interface RowRun {
  /** Stable key: `origin`, `floor`, `warm`, `cold-mirror`, `cold-seeder`, `relay`, `origin-16`, … */
  readonly id: string
  readonly label: string
  readonly clients: Clients
  /** Body bytes all clients received together. */
  readonly bytes: number
  /** From the first request sent to the last byte received. */
  readonly seconds: number
  /** Time to first byte, median over the row's clients. */
  readonly ttfbS: number
  readonly processes: readonly ProcessCost[]
  /** Free-form facts (bytes by source, …). */
  readonly note?: string
  /** When the row ran, on the clock of CPU profiles (see ProfileWindow): its profiles are cut to it. */
  readonly window?: { readonly startUs: number; readonly endUs: number }
}

export interface IdleRss {
  readonly role: string
  readonly rssBytes: number
}

export interface RunResult {
  readonly rows: readonly RowRun[]
  readonly idle: readonly IdleRss[]
}

export interface Spread {
  readonly min: number
  readonly median: number
  readonly max: number
  readonly n: number
}

export function spread(xs: readonly number[]): Spread {
  const finite = xs.filter((x) => Number.isFinite(x))
  if (finite.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN, n: 0 }
  const s = [...finite].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
  return { min: s[0]!, median, max: s.at(-1)!, n: s.length }
}

export const mbPerS = (r: Pick<RowRun, 'bytes' | 'seconds'>) => r.bytes / 1e6 / r.seconds
export const cpuPerGiB = (cpuS: number, bytes: number) => (cpuS / bytes) * GiB

/** The reference rows a row is divided by: the origin and the floor with as many clients. */
export const REFERENCE_IDS: Readonly<Record<Clients, { origin: string; floor: string }>> = {
  single: { origin: 'origin', floor: 'floor' },
  concurrent: { origin: 'origin-16', floor: 'floor-16' },
}

export interface RowRatios {
  readonly toOrigin: number
  readonly toFloor: number
  /** Each Shoal process's CPU per GiB over the floor server's CPU per GiB (same run, same client count). */
  readonly cpuToFloor: Readonly<Record<string, number>>
}

/** Ratios of one row to the references of the same run; NaN when a reference is missing. */
export function ratios(row: RowRun, run: RunResult): RowRatios {
  const ref = REFERENCE_IDS[row.clients]
  const find = (id: string) => run.rows.find((r) => r.id === id)
  const origin = find(ref.origin)
  const floor = find(ref.floor)
  const floorCpu = floor === undefined ? Number.NaN : cpuPerGiB(totalCpu(floor), floor.bytes)
  const cpuToFloor: Record<string, number> = {}
  for (const p of row.processes) if (p.shoal) cpuToFloor[p.role] = cpuPerGiB(p.cpuS, row.bytes) / floorCpu
  return {
    toOrigin: origin === undefined ? Number.NaN : mbPerS(row) / mbPerS(origin),
    toFloor: floor === undefined ? Number.NaN : mbPerS(row) / mbPerS(floor),
    cpuToFloor,
  }
}

const totalCpu = (row: RowRun) => row.processes.reduce((n, p) => n + p.cpuS, 0)

export interface RowSummary {
  readonly id: string
  readonly label: string
  readonly clients: Clients
  readonly mbPerS: Spread
  readonly toOrigin: Spread
  readonly toFloor: Spread
  readonly ttfbMs: Spread
  /** Per process role: CPU seconds per GiB delivered to the clients. */
  readonly cpuPerGiB: Readonly<Record<string, Spread>>
  readonly cpuToFloor: Readonly<Record<string, Spread>>
  readonly peakRssMiB: Readonly<Record<string, Spread>>
  readonly notes: readonly string[]
}

/** Every row id in the order first seen, each summarised over the runs that have it. */
export function summarize(runs: readonly RunResult[]): RowSummary[] {
  const ids: string[] = []
  for (const run of runs) for (const r of run.rows) if (!ids.includes(r.id)) ids.push(r.id)
  return ids.map((id) => {
    const found = runs.flatMap((run) => {
      const row = run.rows.find((r) => r.id === id)
      return row === undefined ? [] : [{ row, ratio: ratios(row, run) }]
    })
    const first = found[0]!.row
    const roles = [...new Set(found.flatMap((f) => f.row.processes.map((p) => p.role)))]
    const perRole = (pick: (f: (typeof found)[number], p: ProcessCost) => number) =>
      Object.fromEntries(
        roles.map((role) => [
          role,
          spread(
            found.flatMap((f) => {
              const p = f.row.processes.find((x) => x.role === role)
              return p === undefined ? [] : [pick(f, p)]
            }),
          ),
        ]),
      )
    const shoalRoles = roles.filter((role) =>
      found.some((f) => f.row.processes.some((p) => p.role === role && p.shoal)),
    )
    return {
      id,
      label: first.label,
      clients: first.clients,
      mbPerS: spread(found.map((f) => mbPerS(f.row))),
      toOrigin: spread(found.map((f) => f.ratio.toOrigin)),
      toFloor: spread(found.map((f) => f.ratio.toFloor)),
      ttfbMs: spread(found.map((f) => f.row.ttfbS * 1000)),
      cpuPerGiB: perRole((f, p) => cpuPerGiB(p.cpuS, f.row.bytes)),
      cpuToFloor: Object.fromEntries(
        shoalRoles.map((role) => [role, spread(found.map((f) => f.ratio.cpuToFloor[role] ?? Number.NaN))]),
      ),
      peakRssMiB: perRole((_f, p) => p.peakRssBytes / MiB),
      notes: found.flatMap((f) => (f.row.note === undefined ? [] : [f.row.note])),
    }
  })
}

export function idleSummary(runs: readonly RunResult[]): Record<string, Spread> {
  const roles = [...new Set(runs.flatMap((r) => r.idle.map((i) => i.role)))]
  return Object.fromEntries(
    roles.map((role) => [
      role,
      spread(runs.flatMap((r) => r.idle.filter((i) => i.role === role).map((i) => i.rssBytes / MiB))),
    ]),
  )
}

/** `median` alone for one run, `median (min–max)` for several. */
export function fmt(s: Spread, digits = 2): string {
  if (s.n === 0) return '–'
  const f = (x: number) => x.toFixed(digits)
  return s.n === 1 || s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`
}

export interface ReportContext {
  readonly title: string
  readonly command: string
  readonly when: string
  readonly facts: readonly string[]
}

export function markdownSection(ctx: ReportContext, runs: readonly RunResult[], profiles: readonly string[]): string {
  const rows = summarize(runs)
  const perRole = (m: Readonly<Record<string, Spread>>, digits: number) =>
    Object.entries(m)
      .map(([role, s]) => `${role} ${fmt(s, digits)}`)
      .join('; ')
  const table = [
    '| path | MB/s | × origin | × floor | CPU s per GiB | Shoal CPU × floor | peak RSS MiB | TTFB ms |',
    '| --- | ---: | ---: | ---: | --- | --- | --- | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${fmt(r.mbPerS, 0)} | ${fmt(r.toOrigin)} | ${fmt(r.toFloor)} | ${perRole(r.cpuPerGiB, 2)} | ` +
        `${perRole(r.cpuToFloor, 2) || '–'} | ${perRole(r.peakRssMiB, 0)} | ${fmt(r.ttfbMs, 1)} |`,
    ),
  ]
  const idle = Object.entries(idleSummary(runs)).map(([role, s]) => `- idle RSS, ${role}: ${fmt(s, 0)} MiB`)
  const notes = rows.flatMap((r) => r.notes.map((n) => `- ${r.label}: ${n}`))
  return [
    `## ${ctx.title}`,
    '',
    `${ctx.when}; ${runs.length} run${runs.length === 1 ? '' : 's'} (median (min–max) over runs; every ratio is taken`,
    'within one run, then summarised). Rerun with:',
    '',
    `    ${ctx.command}`,
    '',
    ...ctx.facts.map((f) => `- ${f}`),
    '',
    ...table,
    '',
    ...idle,
    ...notes,
    '',
    ...(profiles.length === 0
      ? []
      : [
          "### Profiles (`--cpu-prof`: top frames by self time; `--heap-snapshot`: the idle agent's heap)",
          '',
          ...profiles,
        ]),
  ].join('\n')
}
