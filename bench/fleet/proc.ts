import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, type WriteStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { BenchCommandError, BenchDaemonError } from './errors.ts'
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

/** Every daemon still running, so teardown (and a last-resort exit handler) can kill them by pid. */
export const liveDaemons = new Set<Daemon>()

const KEPT_LINES = 200

/** A long-running child (registry, seeder, agent): output goes to a log file, the last lines stay in memory. */
export class Daemon {
  readonly name: string
  readonly logFile: string
  readonly #child: ChildProcess
  readonly #log: WriteStream
  readonly #lines: string[] = []
  readonly #listeners = new Set<(line: string) => void>()
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  readonly exited: Promise<{
    code: number | null
    signal: NodeJS.Signals | null
  }>

  constructor(name: string, c: Command, opts: { logFile: string; env?: NodeJS.ProcessEnv }) {
    this.name = name
    this.logFile = opts.logFile
    this.#log = createWriteStream(opts.logFile, { flags: 'a' })
    this.#log.on('error', () => {})
    this.#child = spawn(c.cmd, c.args, {
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    liveDaemons.add(this)
    this.exited = (once(this.#child, 'close') as Promise<[number | null, NodeJS.Signals | null]>).then(
      ([code, signal]) => this.#exited({ code, signal }),
      (err: unknown) => {
        this.#line(`spawn failed: ${err instanceof Error ? err.message : String(err)}`)
        return this.#exited({ code: null, signal: null })
      },
    )
    for (const stream of [this.#child.stdout, this.#child.stderr]) {
      if (stream === null) continue
      createInterface({
        input: stream,
        crlfDelay: Number.POSITIVE_INFINITY,
      }).on('line', (l) => this.#line(l))
    }
  }

  #exited(info: { code: number | null; signal: NodeJS.Signals | null }) {
    liveDaemons.delete(this)
    this.#exit = info
    this.#log.end()
    return info
  }

  #line(line: string): void {
    this.#log.write(`${line}\n`)
    this.#lines.push(line)
    if (this.#lines.length > KEPT_LINES) this.#lines.shift()
    for (const l of this.#listeners) l(line)
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  get running(): boolean {
    return this.#exit === undefined
  }

  recentOutput(count = 20): string {
    return this.#lines.slice(-count).join('\n')
  }

  /** The first line (already seen or still to come) that `match` maps to a value. */
  async waitForLine<T>(
    match: (line: string) => T | undefined,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ) {
    for (const line of this.#lines) {
      const hit = match(line)
      if (hit !== undefined) return hit
    }
    const { promise, resolve, reject } = Promise.withResolvers<T>()
    const listener = (line: string) => {
      const hit = match(line)
      if (hit !== undefined) resolve(hit)
    }
    this.#listeners.add(listener)
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000)
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout])
    const onAbort = () => reject(new BenchDaemonError(`${this.name}: awaited line not seen\n${this.recentOutput()}`))
    signal.addEventListener('abort', onAbort, { once: true })
    void this.exited.then((i) =>
      reject(new BenchDaemonError(`${this.name} exited (${i.code ?? i.signal})\n${this.recentOutput()}`)),
    )
    try {
      return await promise
    } finally {
      this.#listeners.delete(listener)
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return
    this.#child.kill('SIGTERM')
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs)
    try {
      await this.exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** Synchronous, for the exit handler. */
  killNow(): void {
    if (this.running) this.#child.kill('SIGKILL')
  }
}
