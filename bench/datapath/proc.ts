/**
 * What the data-path bench reads from /proc: CPU time (utime + stime from /proc/<pid>/stat) and memory (VmRSS,
 * VmHWM from /proc/<pid>/status). The parsers are pure; the readers only add the file read.
 */
import { execFileSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'

/** Kernel clock ticks per second, the unit of utime and stime. */
export const CLOCK_TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** User plus system CPU ticks in a /proc/<pid>/stat line (every thread of the process, workers included). */
export function parseStatTicks(stat: string): number {
  // The command name (field 2) may hold spaces and parentheses: fields are counted from the last ')'.
  const close = stat.lastIndexOf(')')
  if (close === -1) throw new Error('not a /proc/<pid>/stat line')
  // After ") ": field 3 (state) is index 0, so utime (field 14) is index 11 and stime (field 15) index 12.
  const fields = stat
    .slice(close + 2)
    .trim()
    .split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (!Number.isSafeInteger(utime) || !Number.isSafeInteger(stime)) throw new Error('no utime/stime in stat line')
  return utime + stime
}

export type MemoryField = 'VmRSS' | 'VmHWM'

/** A memory field of /proc/<pid>/status, in bytes. */
export function parseStatusBytes(status: string, field: MemoryField): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (m === null) throw new Error(`no ${field} in status`)
  return Number(m[1]) * 1024
}

export async function cpuSeconds(pid: number): Promise<number> {
  return parseStatTicks(await readFile(`/proc/${pid}/stat`, 'utf8')) / CLOCK_TICKS_PER_S
}

export async function memoryBytes(pid: number, field: MemoryField): Promise<number> {
  return parseStatusBytes(await readFile(`/proc/${pid}/status`, 'utf8'), field)
}

/**
 * Starts a new peak for VmHWM (`echo 5 > /proc/<pid>/clear_refs`, Linux 4.0+), so each row reports its own peak and
 * not the process's lifetime one. Returns false when the kernel refuses; the caller then has the sampled peak only.
 */
export async function resetPeak(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** CPU and peak memory of one process over a stretch of work: begin(), then end() after it. */
export class ProcessWatch {
  readonly pid: number
  #cpu0 = 0
  #sampledPeak = 0
  #reset = false
  #timer: NodeJS.Timeout | undefined

  constructor(pid: number) {
    this.pid = pid
  }

  async begin(): Promise<void> {
    this.#reset = await resetPeak(this.pid)
    this.#sampledPeak = await memoryBytes(this.pid, 'VmRSS')
    this.#cpu0 = await cpuSeconds(this.pid)
    // A sampled peak as well, in case clear_refs is refused (then VmHWM is the lifetime peak).
    this.#timer = setInterval(() => {
      memoryBytes(this.pid, 'VmRSS').then(
        (b) => (this.#sampledPeak = Math.max(this.#sampledPeak, b)),
        () => {},
      )
    }, 100)
  }

  async end(): Promise<{ cpuS: number; peakRssBytes: number }> {
    clearInterval(this.#timer)
    const cpuS = (await cpuSeconds(this.pid)) - this.#cpu0
    // After a reset VmHWM is this stretch's own exact peak; without one it is the lifetime peak, so only the
    // 100 ms samples speak for this stretch.
    const hwm = this.#reset ? await memoryBytes(this.pid, 'VmHWM') : 0
    return { cpuS, peakRssBytes: Math.max(this.#sampledPeak, hwm) }
  }
}
