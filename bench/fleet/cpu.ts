import { CLOCK_TICKS_PER_S } from '../datapath/proc.ts'
import { readFile } from 'node:fs/promises'

/** Jiffies since boot of one CPU line of /proc/stat. */
export interface CpuTimes {
  readonly total: number
  /** idle + iowait */
  readonly idle: number
}

export interface CpuSnapshot {
  readonly all: CpuTimes
  readonly cores: readonly CpuTimes[]
}

function times(fields: readonly string[]): CpuTimes {
  // user nice system idle iowait irq softirq steal; guest time is already inside user, so it stops there.
  const v = fields.slice(0, 8).map((f) => Number(f))
  if (v.length < 4 || v.some((x) => !Number.isFinite(x))) throw new TypeError(`bad /proc/stat fields: ${fields}`)
  const total = v.reduce((a, b) => a + b, 0)
  return { total, idle: (v[3] ?? 0) + (v[4] ?? 0) }
}

export function parseProcStat(text: string): CpuSnapshot {
  let all: CpuTimes | undefined
  const cores: CpuTimes[] = []
  for (const line of text.split('\n')) {
    const [label, ...fields] = line.trim().split(/\s+/)
    if (label === 'cpu') all = times(fields)
    else if (label !== undefined && /^cpu\d+$/.test(label)) cores.push(times(fields))
  }
  if (all === undefined) throw new TypeError('/proc/stat has no cpu line')
  return { all, cores }
}

/** Fraction of the interval the CPU(s) did anything at all: user, system, irq, softirq (the network), steal. */
export function busyFraction(a: CpuTimes, b: CpuTimes): number {
  const total = b.total - a.total
  if (total <= 0) return 0
  return Math.min(1, Math.max(0, (total - (b.idle - a.idle)) / total))
}

/** CPU seconds the whole machine spent busy (all cores) between two snapshots; /proc/stat counts clock ticks. */
export function busySeconds(a: CpuSnapshot, b: CpuSnapshot): number {
  const ticks = b.all.total - a.all.total - (b.all.idle - a.all.idle)
  return Math.max(0, ticks) / CLOCK_TICKS_PER_S
}

export async function readCpu(): Promise<CpuSnapshot> {
  return parseProcStat(await readFile('/proc/stat', 'utf8'))
}

export interface CpuUse {
  /** Busy fraction of the whole machine (1 = every core busy all the time). */
  readonly busy: number
  readonly perCore: readonly number[]
}

export function cpuUse(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  return {
    busy: busyFraction(a.all, b.all),
    perCore: b.cores.map((c, i) => busyFraction(a.cores[i] ?? c, c)),
  }
}
