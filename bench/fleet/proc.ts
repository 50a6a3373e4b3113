import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { BenchCommandError } from './errors.ts'
import type { Command } from './netns.ts'

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
}

function tail(text: string, max = 1500): string {
  const t = text.trim()
  return t.length > max ? `…${t.slice(-max)}` : t
}

export function describe(c: Command): string {
  return [c.cmd, ...c.args].join(' ')
}

/** Runs a command to completion; a non-zero exit is a result, not an error (see runOk). */
export async function run(c: Command, opts: RunOptions = {}): Promise<RunResult> {
  const signals = [opts.signal, AbortSignal.timeout(opts.timeoutMs ?? 60_000)].filter((s) => s !== undefined)
  const child = spawn(c.cmd, c.args, {
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    signal: AbortSignal.any(signals),
    killSignal: 'SIGKILL',
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s
  })
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s
  })
  const [code, signal] = (await once(child, 'close').catch((err: unknown) => {
    throw new BenchCommandError(`${describe(c)}: ${err instanceof Error ? err.message : String(err)}`)
  })) as [number | null, NodeJS.Signals | null]
  return { code, signal, stdout, stderr }
}

export async function runOk(c: Command, opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(c, opts)
  if (r.code !== 0) {
    const why = r.signal === null ? `exit ${r.code}` : `signal ${r.signal}`
    throw new BenchCommandError(`${describe(c)} failed (${why}): ${tail(r.stderr || r.stdout)}`)
  }
  return r
}

/**
 * How the fleet's daemons (harness/daemon.ts) are run: a bench runs for minutes, so only the last lines stay in
 * memory (each daemon's whole output is in its log file), and a stop waits 5 s before SIGKILL.
 */
export const FLEET_DAEMON = { keepLines: 200, stopGraceMs: 5_000 } as const
