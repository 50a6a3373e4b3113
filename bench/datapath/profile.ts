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
 * A sample stands for the time to the next one, at most this long. The sampler ticks every ~1 ms; on a loaded
 * machine a process (or its sampling thread) may not run for hundreds of ms, and that whole gap would be charged to
 * whatever frame it stopped in (one 646 ms sample in `AbortController.abort` made a frame 19 % of a row's busy time).
 */
export const MAX_SAMPLE_US = 20_000

function sampleUs(gapUs: number): number {
  return Math.min(MAX_SAMPLE_US, Math.max(0, gapUs))
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
      const us = sampleUs(i + 1 < deltas.length ? deltas[i + 1]! : mean)
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

export interface CallerTime {
  /** The nearest frame of Shoal's own code on the sampled stacks (`function file:line`), or `(…)` for none. */
  readonly caller: string
  readonly ms: number
  /** Share of busy time (idle left out). */
  readonly share: number
  /** Where under it the time was spent: the sampled frame's package, `node:` module or native function. */
  readonly spentIn: readonly { readonly what: string; readonly share: number }[]
}

/** Shoal's own code, not a dependency's: what the by-caller view charges time to. */
function isOwnCode(url: string): boolean {
  return !url.includes('node_modules/') && /\/(agent|seeder|shared|cli)\//.test(url)
}

/** What kind of code a sampled frame is: a dependency's package, a `node:` module, native code, or our own. */
export function frameKind(node: CpuProfileNode): string {
  const { functionName, url } = node.callFrame
  if (url === '') return functionName.startsWith('(') ? functionName : `native ${functionName || '(anonymous)'}`
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/')
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
  }
  if (url.startsWith('node:')) return url.replace('node:internal/', 'node:')
  return isOwnCode(url) ? 'own code' : shortUrl(url)
}

/**
 * Bottom-up by caller: each busy sample is charged to the nearest frame of Shoal's own code on its stack, so time
 * spent inside libp2p, undici, streams or native calls shows under the function of ours that led there (the flat
 * self-time list cannot say which of our paths a `writeBuffer` or a yamux frame belongs to). The collector and
 * V8's `(program)` have no stack and stay apart; a stack with no frame of ours is `(no frame of ours)` (event-loop
 * callbacks of a dependency: a socket's reads, timers).
 */
export function summarizeByCaller(profile: CpuProfile, topN = 15, window?: ProfileWindow): CallerTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  if (samples.length === 0 || deltas.length !== samples.length) return []
  const mean = (profile.endTime - profile.startTime) / samples.length
  const callerOf = new Map<number, string>()
  const caller = (id: number): string => {
    const known = callerOf.get(id)
    if (known !== undefined) return known
    let at: number | undefined = id
    let found = '(no frame of ours)'
    while (at !== undefined) {
      const n = byId.get(at)!
      if (isOwnCode(n.callFrame.url)) {
        found = frameName(n)
        break
      }
      at = parent.get(at)
    }
    callerOf.set(id, found)
    return found
  }
  const total = new Map<string, number>()
  const spent = new Map<string, Map<string, number>>()
  let busyUs = 0
  let at = profile.startTime
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i]!
    if (window !== undefined && (at < window.startUs || at > window.endUs)) continue
    const us = sampleUs(i + 1 < deltas.length ? deltas[i + 1]! : mean)
    const leaf = byId.get(samples[i]!)
    if (leaf === undefined || leaf.callFrame.functionName === '(idle)') continue
    busyUs += us
    const kind = frameKind(leaf)
    const who = kind === '(garbage collector)' || kind === '(program)' ? kind : caller(leaf.id)
    total.set(who, (total.get(who) ?? 0) + us)
    let m = spent.get(who)
    if (m === undefined) spent.set(who, (m = new Map()))
    m.set(kind, (m.get(kind) ?? 0) + us)
  }
  const share = (us: number) => (busyUs === 0 ? 0 : us / busyUs)
  return [...total]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([who, us]) => ({
      caller: who,
      ms: us / 1000,
      share: share(us),
      spentIn: [...spent.get(who)!]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([what, u]) => ({ what, share: share(u) })),
    }))
}

/** Markdown lines for the by-caller view of one profile. */
export function callerLines(title: string, callers: readonly CallerTime[]): string[] {
  if (callers.length === 0) return []
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`
  const code = (s: string) => `\`${s.replaceAll('|', '\\|')}\``
  return [
    `**${title}, by caller** (busy time charged to the nearest frame of our code on the stack):`,
    '',
    '| ms | of busy | caller | spent in (of busy) |',
    '| ---: | ---: | --- | --- |',
    ...callers.map(
      (c) =>
        `| ${c.ms.toFixed(0)} | ${pct(c.share)} | ${code(c.caller)} | ${c.spentIn.map((s) => `${code(s.what)} ${pct(s.share)}`).join(', ')} |`,
    ),
    '',
  ]
}
