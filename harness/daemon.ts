import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, type WriteStream } from 'node:fs'
import { createInterface } from 'node:readline'

/** A daemon that exited or did not get ready in time. */
export class DaemonError extends Error {
  override readonly name = 'DaemonError'
  readonly code = 'HARNESS_DAEMON_FAILED'
}

export interface DaemonExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface DaemonOptions {
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** Every output line is appended to this file too (the fleet bench keeps one log per daemon). */
  readonly logFile?: string
  /** Keep only the last this many lines in memory (a long bench run); default: all of them (a test's daemon). */
  readonly keepLines?: number
  /** How long stop() waits after its signal before SIGKILL, unless the call says otherwise. */
  readonly stopGraceMs?: number
}

type LineListener = (line: string, stream: 'stdout' | 'stderr') => void

/** Every daemon still running, so a teardown (and the exit handler below) can kill them. */
export const liveDaemons = new Set<Daemon>()
// A crashed test file or bench must not leave daemons behind; 'exit' handlers may only do synchronous work.
process.once('exit', () => {
  for (const d of liveDaemons) d.killNow()
})

/**
 * A long-running child process (registry, containerd, a shoal agent or seeder) whose output lines are kept and can be
 * awaited. The end-to-end tests and the fleet bench both start theirs with this.
 */
export class Daemon {
  readonly name: string
  readonly child: ChildProcess
  /** Output lines, oldest first (the last `keepLines` when that is set). */
  readonly lines: string[] = []
  readonly exited: Promise<DaemonExit>
  #exitInfo: DaemonExit | undefined
  readonly #listeners = new Set<LineListener>()
  readonly #log: WriteStream | undefined
  readonly #keepLines: number
  readonly #stopGraceMs: number

  constructor(name: string, cmd: string, args: readonly string[], opts: DaemonOptions = {}) {
    this.name = name
    this.#keepLines = opts.keepLines ?? Number.POSITIVE_INFINITY
    // Past the agent's own 10 s drain of in-flight requests, so a clean stop is never cut to a SIGKILL.
    this.#stopGraceMs = opts.stopGraceMs ?? 20_000
    if (opts.logFile !== undefined) {
      this.#log = createWriteStream(opts.logFile, { flags: 'a' })
      this.#log.on('error', () => {})
    }
    this.child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    liveDaemons.add(this)
    const closed = once(this.child, 'close') as Promise<[number | null, NodeJS.Signals | null]>
    this.exited = closed.then(
      ([code, signal]) => this.#exited({ code, signal }),
      (err: unknown) => {
        this.#line(`spawn failed: ${err instanceof Error ? err.message : String(err)}`, 'stderr')
        return this.#exited({ code: null, signal: null })
      },
    )
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = this.child[stream]
      if (source === null) continue
      createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
        this.#line(line, stream),
      )
    }
  }

  #exited(info: DaemonExit): DaemonExit {
    liveDaemons.delete(this)
    this.#exitInfo = info
    this.#log?.end()
    return info
  }

  #line(line: string, stream: 'stdout' | 'stderr'): void {
    this.#log?.write(`${line}\n`)
    this.lines.push(line)
    if (this.lines.length > this.#keepLines) this.lines.shift()
    for (const listener of this.#listeners) listener(line, stream)
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new DaemonError(`${this.name} has no pid (did not start)`)
    return this.child.pid
  }

  get running(): boolean {
    return this.#exitInfo === undefined
  }

  onLine(listener: LineListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** The last lines of output, for error messages. */
  recentOutput(count = 30): string {
    return this.lines.slice(-count).join('\n')
  }

  /** Resolves with the first line (seen before or after the call) that `match` returns a value for. */
  async waitForLine<T>(
    match: (line: string) => T | undefined,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    for (const line of this.lines) {
      const hit = match(line)
      if (hit !== undefined) return hit
    }
    const { promise, resolve, reject } = Promise.withResolvers<T>()
    const off = this.onLine((line) => {
      const hit = match(line)
      if (hit !== undefined) resolve(hit)
    })
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000)
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout])
    const onAbort = () => reject(new DaemonError(`${this.name}: awaited line not seen\n${this.recentOutput()}`))
    signal.addEventListener('abort', onAbort, { once: true })
    void this.exited.then((info) =>
      reject(new DaemonError(`${this.name} exited (${info.code ?? info.signal})\n${this.recentOutput()}`)),
    )
    try {
      return await promise
    } finally {
      off()
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** Sends `signal`, waits for the exit, and kills the process if it has not gone after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = this.#stopGraceMs): Promise<DaemonExit> {
    if (this.running) {
      this.child.kill(signal)
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
      try {
        await this.exited
      } finally {
        clearTimeout(timer)
      }
    }
    return this.exited
  }

  /** Synchronous, for exit handlers. */
  killNow(): void {
    if (this.running) this.child.kill('SIGKILL')
  }
}
