import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { request } from 'undici'

const MiB = 1024 * 1024
const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** VmHWM (peak) or VmRSS (current) of a process, in bytes. */
export async function memoryBytes(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

/** User plus system CPU time a process has used so far, in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // The command name may hold spaces and parentheses: fields are counted from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S
}

export interface Transfer {
  readonly bytes: number
  readonly seconds: number
  /** CPU seconds the serving process used during the transfer. */
  readonly serverCpuS: number
}

/** GETs a URL with undici and counts the body (no hashing: the reader must not be the bottleneck). */
export async function timedGet(url: string, expectBytes: number, serverPid: number): Promise<Transfer> {
  const cpu0 = await cpuSeconds(serverPid)
  const t0 = performance.now()
  const res = await request(url)
  if (res.statusCode !== 200) {
    await res.body.dump()
    throw new Error(`GET ${url} answered ${res.statusCode}`)
  }
  let bytes = 0
  for await (const chunk of res.body) bytes += (chunk as Buffer).byteLength
  const seconds = (performance.now() - t0) / 1000
  if (bytes !== expectBytes) throw new Error(`GET ${url}: ${bytes} bytes, expected ${expectBytes}`)
  return { bytes, seconds, serverCpuS: (await cpuSeconds(serverPid)) - cpu0 }
}

/** The 1-minute load average: on a shared machine it says how much to trust absolute figures. */
export const load1 = () => loadavg()[0]!

export const mbPerS = (t: Transfer) => t.bytes / 1e6 / t.seconds
export const mib = (bytes: number) => bytes / MiB

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** One line per tool version and the machine, for the results file. */
export function machineInfo(): string[] {
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0]!
    } catch {
      return 'unknown'
    }
  }
  const ramGiB = (totalmem() / 1024 ** 3).toFixed(0)
  return [
    `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${ramGiB} GiB RAM, Linux ${release()}`,
    `Node ${process.version}, ${version('docker-registry', ['--version'])}, ${version('skopeo', ['--version'])}`,
  ]
}
