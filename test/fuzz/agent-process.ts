import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const SHOAL_BIN = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url))
/** pino's numeric level for `error`: any such line means a request failed inside the agent. */
const PINO_ERROR = 50

export interface AgentProcess {
  readonly url: string
  readonly port: number
  readonly pid: number
  readonly child: ChildProcess
  /** Log lines at level error or above, as the agent wrote them. */
  readonly errorLines: readonly string[]
  /** True while the process has not exited. */
  alive(): boolean
  /** Current and peak resident set size of the agent process, from /proc (bytes). */
  memory(): { rss: number; peakRss: number }
  stop(): Promise<void>
}

/**
 * Runs `shoal agent` as a child process: an honest RSS, a crash that cannot hide inside the test
 * runner, and a working directory of the test's choosing (a relative write would land there).
 */
export async function spawnAgent(opts: {
  origin: string
  data: string
  cwd: string
  args?: readonly string[]
}): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    [
      SHOAL_BIN,
      'agent',
      '--listen',
      '127.0.0.1:0',
      '--origin',
      opts.origin,
      '--data',
      opts.data,
      '--log-level',
      'info',
      ...(opts.args ?? []),
    ],
    { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } },
  )
  const errorLines: string[] = []
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-4096)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = await new Promise<string>((resolve, reject) => {
    let pending = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (s: string) => {
      pending += s
      let nl: number
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl)
        pending = pending.slice(nl + 1)
        let rec: { level?: number; msg?: string; url?: string }
        try {
          rec = JSON.parse(line) as typeof rec
        } catch {
          continue
        }
        if ((rec.level ?? 0) >= PINO_ERROR) errorLines.push(line.slice(0, 2000))
        if (rec.msg === 'agent listening' && typeof rec.url === 'string') resolve(rec.url)
      }
    })
    void exited.then(() => reject(new Error(`agent exited before listening: ${stderr}`)))
  })
  const pid = child.pid!
  return {
    url,
    port: Number(new URL(url).port),
    pid,
    child,
    errorLines,
    alive: () => child.exitCode === null && child.signalCode === null,
    memory() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
      return { rss: kib('VmRSS') * 1024, peakRss: kib('VmHWM') * 1024 }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}
