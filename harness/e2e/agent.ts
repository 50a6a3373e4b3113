import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { Daemon } from '../daemon.ts'
import { freePort, removeDir, tempDir, waitForHttp } from './process.ts'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SHOAL_BIN = join(REPO_ROOT, 'bin', 'shoal.js')

export interface AgentConfig {
  /** Per-registry credentials the agent uses towards that upstream, keyed by `host:port`. */
  readonly registries?: Readonly<Record<string, { readonly username: string; readonly password: string }>>
}

export interface StartAgentOptions {
  /** The default upstream, e.g. `http://127.0.0.1:5100`. */
  readonly origin: string
  /** Upstreams (`host:port`) the agent may reach over plain HTTP when a client names them with `?ns=`. */
  readonly insecureRegistries?: readonly string[]
  /** Written to a YAML file and passed as `--config`. */
  readonly config?: AgentConfig
  /** Reuse a data dir (to restart over the same cache); a fresh temp dir otherwise. */
  readonly dataDir?: string
  readonly extraArgs?: readonly string[]
  readonly signal?: AbortSignal
}

export interface Agent {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** `127.0.0.1:PORT`, usable as a mirror host or an image reference's registry part. */
  readonly host: string
  readonly pid: number
  readonly dataDir: string
  readonly daemon: Daemon
  /** Every stdout and stderr line so far. */
  readonly lines: readonly string[]
  /** The `/metrics` text. */
  metricsText(): Promise<string>
  /** Sum of the samples of a metric whose labels include `labels` (0 when absent). */
  metric(name: string, labels?: Readonly<Record<string, string>>): Promise<number>
  /** Peak resident set size (VmHWM) of the agent process, in bytes. */
  peakRssBytes(): Promise<number>
  /** Current resident set size (VmRSS), in bytes. */
  rssBytes(): Promise<number>
  /** Sends `signal` (SIGTERM by default) and waits for the exit; the data dir stays until `cleanup`. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: string | null }>
  kill(): Promise<void>
  /** Stops the agent if needed and removes its temp dirs. */
  cleanup(): Promise<void>
}

function labelsMatch(text: string | undefined, want: Readonly<Record<string, string>>): boolean {
  const have = new Map<string, string>()
  for (const m of (text ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have.set(m[1]!, m[2]!)
  return Object.entries(want).every(([k, v]) => have.get(k) === v)
}

/** Sums the Prometheus text-format samples of `name` whose labels include `labels`. */
export function sumMetric(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null || m[1] !== name || !labelsMatch(m[2], labels)) continue
    sum += Number(m[3])
  }
  return sum
}

async function procStatusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

/**
 * Starts `node bin/shoal.js agent …` as a child process (this process's Node, i.e. Node 24 under
 * vitest) and waits until `GET /readyz` answers 200.
 */
export async function startAgent(opts: StartAgentOptions): Promise<Agent> {
  const dir = await tempDir('agent')
  const dataDir = opts.dataDir ?? join(dir, 'data')
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const args = [SHOAL_BIN, 'agent', '--listen', host, '--origin', opts.origin, '--data', dataDir]
  for (const r of opts.insecureRegistries ?? []) args.push('--insecure-registry', r)
  if (opts.config !== undefined) {
    const configPath = join(dir, 'shoal.yaml')
    await writeFile(configPath, stringify(opts.config), { mode: 0o600 })
    args.push('--config', configPath)
  }
  args.push(...(opts.extraArgs ?? []))
  // The developer's SHOAL_* settings must not leak into a test agent.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_')))
  const daemon = new Daemon('shoal agent', process.execPath, args, { cwd: REPO_ROOT, env })
  const url = `http://${host}`
  try {
    await waitForHttp(`${url}/readyz`, {
      daemon,
      timeoutMs: 30_000,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    })
  } catch (err) {
    await daemon.stop('SIGKILL')
    await removeDir(dir)
    throw err
  }
  const pid = daemon.pid

  const metricsText = async () => {
    const res = await fetch(`${url}/metrics`)
    if (res.status !== 200) throw new Error(`agent /metrics answered ${res.status}`)
    return res.text()
  }

  return {
    url,
    host,
    pid,
    dataDir,
    daemon,
    lines: daemon.lines,
    metricsText,
    async metric(name, labels = {}) {
      return sumMetric(await metricsText(), name, labels)
    },
    peakRssBytes: () => procStatusBytes(pid, 'VmHWM'),
    rssBytes: () => procStatusBytes(pid, 'VmRSS'),
    stop: (signal = 'SIGTERM') => daemon.stop(signal),
    async kill() {
      await daemon.stop('SIGKILL')
    },
    async cleanup() {
      await daemon.stop()
      await removeDir(dir)
    },
  }
}
