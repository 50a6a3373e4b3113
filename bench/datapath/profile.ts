/**
 * Summary of a V8 `.cpuprofile` (what `node --cpu-prof` writes): the frames with the most self time, so a reader
 * starts from where the CPU went. Pure: give it the parsed JSON.
 */

export interface CpuProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
  readonly hitCount?: number
  readonly children?: readonly number[]
}

export interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[]
  readonly startTime: number
  readonly endTime: number
  /** Node id of each sample. */
  readonly samples?: readonly number[]
  /** Microseconds before each sample (the first is from startTime). */
  readonly timeDeltas?: readonly number[]
}

export interface FrameTime {
  /** `function file:line`, or V8's own `(garbage collector)`, `(idle)`, `(program)`. */
  readonly frame: string
  readonly selfMs: number
  /** Share of all sampled time, idle included. */
  readonly share: number
}

export interface ProfileSummary {
  readonly totalMs: number
  /** Sampled time not idle: what the process spent on CPU (or waiting in a syscall on the main thread). */
  readonly busyMs: number
  readonly idleShare: number
  readonly gcShare: number
  readonly top: readonly FrameTime[]
}

/** `node:internal/…` and `file:///…/node_modules/x/y.js` shortened to something a table can hold. */
export function shortUrl(url: string): string {
  if (url === '') return ''
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length)
  for (const root of ['/agent/', '/seeder/', '/shared/', '/cli/', '/bench/']) {
    const i = url.lastIndexOf(root)
    if (i !== -1) return url.slice(i + 1)
  }
  return url.replace(/^file:\/\//, '')
}

export function frameName(node: CpuProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame
  const name = functionName === '' ? '(anonymous)' : functionName
  const where = shortUrl(url)
  // lineNumber is 0-based in the profile.
  return where === '' ? name : `${name} ${where}:${lineNumber + 1}`
}

/**
 * A span of the profiled process's life, on the clock V8 stamps samples with (CLOCK_MONOTONIC, in µs: what
 * `process.hrtime.bigint() / 1000n` reads in any process of the machine).
 */
export interface ProfileWindow {
  readonly startUs: number
  readonly endUs: number
}

/**
 * Self time per frame, merged across the call tree (the same function reached by two paths is one row). With
 * `window`, only the samples taken within it: what the process did during one benchmark row.
 */
export function summarizeProfile(profile: CpuProfile, topN = 15, window?: ProfileWindow): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  if (samples.length > 0 && deltas.length === samples.length) {
    // A sample's time is the gap to the next one (the last sample gets the mean gap).
    const total = profile.endTime - profile.startTime
    const mean = total / samples.length
    let at = profile.startTime
    for (let i = 0; i < samples.length; i++) {
      at += deltas[i]!
      if (window !== undefined && (at < window.startUs || at > window.endUs)) continue
      const us = i + 1 < deltas.length ? Math.max(0, deltas[i + 1]!) : mean
      selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + us)
    }
  } else {
    // Older profiles: hit counts only; spread the wall time evenly over the hits.
    const hits = profile.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0)
    const usPerHit = hits === 0 ? 0 : (profile.endTime - profile.startTime) / hits
    for (const n of profile.nodes) if ((n.hitCount ?? 0) > 0) selfUs.set(n.id, n.hitCount! * usPerHit)
  }
  const byFrame = new Map<string, number>()
  let totalUs = 0
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (node === undefined) continue
    const name = frameName(node)
    byFrame.set(name, (byFrame.get(name) ?? 0) + us)
    totalUs += us
  }
  const share = (us: number) => (totalUs === 0 ? 0 : us / totalUs)
  const idleUs = byFrame.get('(idle)') ?? 0
  const gcUs = byFrame.get('(garbage collector)') ?? 0
  const top = [...byFrame]
    .filter(([frame]) => frame !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([frame, us]) => ({ frame, selfMs: us / 1000, share: share(us) }))
  return {
    totalMs: totalUs / 1000,
    busyMs: (totalUs - idleUs) / 1000,
    idleShare: share(idleUs),
    gcShare: share(gcUs),
    top,
  }
}

/** Markdown lines for one profile. */
export function profileLines(title: string, s: ProfileSummary): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`
  const busy = s.busyMs
  return [
    `**${title}**: ${(s.totalMs / 1000).toFixed(1)} s sampled, idle ${pct(s.idleShare)}, GC ${pct(s.gcShare)}`,
    '',
    '| self ms | of all | of busy | frame |',
    '| ---: | ---: | ---: | --- |',
    ...s.top.map(
      (f) =>
        `| ${f.selfMs.toFixed(0)} | ${pct(f.share)} | ${busy === 0 ? '–' : pct(f.selfMs / busy)} | \`${f.frame.replaceAll('|', '\\|')}\` |`,
    ),
    '',
  ]
}
