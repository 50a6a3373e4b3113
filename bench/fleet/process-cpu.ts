/**
 * Who used the machine's CPU during a rollout: utime + stime of the harness and every process below it, read from
 * /proc before and after, grouped by what the process is (Shoal agent, seeder, registry, pull client, …). A fleet
 * on a small machine is often bound by its CPU; this says by whose. What the machine spent beyond these (interrupts,
 * other work on a shared machine) is the report's remainder.
 *
 * Pull clients run to completion inside the rollout: once reaped, their time is in the harness's own cutime and
 * cstime (fields 16 and 17 of /proc/self/stat), which is where they are counted.
 */
import { readdir, readFile } from 'node:fs/promises'
import { CLOCK_TICKS_PER_S } from '../datapath/proc.ts'

export interface ProcessTimes {
  readonly kind: string
  readonly ppid: number
  /** utime + stime, in clock ticks. */
  readonly ticks: number
  /** cutime + cstime: reaped children's time, in clock ticks. */
  readonly childTicks: number
}

/** utime, stime, cutime and cstime of a /proc/<pid>/stat line, in clock ticks. */
export function parseStatTimes(stat: string): { ticks: number; childTicks: number; comm: string; ppid: number } {
  const open = stat.indexOf('(')
  const close = stat.lastIndexOf(')')
  if (open === -1 || close === -1) throw new Error('not a /proc/<pid>/stat line')
  // After ") ": field 3 (state) is index 0, so utime (field 14) is index 11, stime 12, cutime 13, cstime 14.
  const f = stat
    .slice(close + 2)
    .trim()
    .split(' ')
    .map((x) => Number(x))
  const [ppid, utime, stime, cutime, cstime] = [f[1], f[11], f[12], f[13], f[14]]
  if (![ppid, utime, stime, cutime, cstime].every((v) => v !== undefined && Number.isSafeInteger(v))) {
    throw new Error('no utime/stime/cutime/cstime in stat line')
  }
  return {
    ticks: (utime ?? 0) + (stime ?? 0),
    childTicks: (cutime ?? 0) + (cstime ?? 0),
    comm: stat.slice(open + 1, close),
    ppid: ppid ?? 0,
  }
}

/** What a process is, from its command line (NUL-separated, as /proc/<pid>/cmdline has it) and name. */
export function processKind(cmdline: string, comm: string): string {
  const argv = cmdline.split('\0').filter((a) => a !== '')
  const shoal = argv.findIndex((a) => /(^|\/)shoal(\.js|\.ts)?$/.test(a) || a.endsWith('/cli/main.ts'))
  if (shoal !== -1) {
    const command = argv[shoal + 1]
    if (command === 'agent' || command === 'seeder') return `shoal ${command}`
    return 'shoal (other)'
  }
  if (comm === 'docker-registry' || argv[0]?.endsWith('docker-registry') === true) return 'docker-registry'
  if (comm === 'skopeo') return 'pull client (skopeo)'
  return 'other'
}

/**
 * CPU times now of this process and every process below it (the fleet's daemons run as its children), by pid:
 * other work on a shared machine stays out. Processes that vanish while being read are left out.
 */
export async function sampleProcesses(root = process.pid): Promise<Map<number, ProcessTimes>> {
  const all = new Map<number, ProcessTimes>()
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d))
  await Promise.all(
    pids.map(async (d) => {
      try {
        const [stat, cmdline] = await Promise.all([
          readFile(`/proc/${d}/stat`, 'utf8'),
          readFile(`/proc/${d}/cmdline`, 'utf8'),
        ])
        const t = parseStatTimes(stat)
        const pid = Number(d)
        const kind = pid === root ? 'bench harness' : processKind(cmdline, t.comm)
        all.set(pid, { kind, ppid: t.ppid, ticks: t.ticks, childTicks: t.childTicks })
      } catch {
        // Gone between readdir and read: it ran before the window or is counted in its parent's child time.
      }
    }),
  )
  return descendants(all, root)
}

/** The processes of `all` that are `root` or below it. */
export function descendants(all: ReadonlyMap<number, ProcessTimes>, root: number): Map<number, ProcessTimes> {
  const out = new Map<number, ProcessTimes>()
  const below = (pid: number): boolean => {
    for (let p = pid, hops = 0; hops < 64; hops++) {
      if (p === root) return true
      const parent = all.get(p)?.ppid
      if (parent === undefined || parent === 0 || parent === p) return false
      p = parent
    }
    return false
  }
  for (const [pid, t] of all) if (below(pid)) out.set(pid, t)
  return out
}

export interface KindCpu {
  readonly kind: string
  /** Processes of this kind seen in the window. */
  readonly processes: number
  readonly seconds: number
}

/**
 * CPU seconds per kind between two samples, largest first. A process present only in `after` counts all its
 * time (it started in the window); one present only in `before` is left out (its time after the first sample
 * is in its parent's child time if the parent reaped it). The harness's reaped children (the pull clients) are
 * their own row.
 */
export function cpuByKind(
  before: ReadonlyMap<number, ProcessTimes>,
  after: ReadonlyMap<number, ProcessTimes>,
  self = process.pid,
  reapedKind = 'pull client (skopeo)',
): KindCpu[] {
  const sums = new Map<string, { processes: number; ticks: number }>()
  const add = (kind: string, ticks: number, processes: number): void => {
    const s = sums.get(kind) ?? { processes: 0, ticks: 0 }
    sums.set(kind, { processes: s.processes + processes, ticks: s.ticks + Math.max(0, ticks) })
  }
  for (const [pid, b] of after) {
    const a = before.get(pid)
    if (a !== undefined && a.kind !== b.kind) continue // a pid reused by another program: leave it out
    add(b.kind, b.ticks - (a?.ticks ?? 0), 1)
    if (pid === self) add(reapedKind, b.childTicks - (a?.childTicks ?? 0), 0)
  }
  return [...sums]
    .map(([kind, s]) => ({ kind, processes: s.processes, seconds: s.ticks / CLOCK_TICKS_PER_S }))
    .filter((k) => k.seconds > 0)
    .sort((x, y) => y.seconds - x.seconds)
}
