import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Daemon, DaemonError } from '../daemon.ts'

/** A command that exited with a non-zero status (or a signal); carries its output for the test report. */
export class CommandError extends Error {
  override readonly name = 'CommandError'
  readonly code = 'E2E_COMMAND_FAILED'
  readonly result: RunResult

  constructor(command: string, result: RunResult) {
    const why = result.signal === null ? `exit ${result.code}` : `signal ${result.signal}`
    super(`${command} failed (${why}): ${tail(result.stderr || result.stdout)}`)
    this.result = result
  }
}

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
  readonly input?: string
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
}

function tail(text: string, max = 2000): string {
  const t = text.trim()
  return t.length > max ? `…${t.slice(-max)}` : t
}

/** Runs a command to completion; never throws on a non-zero exit (see runOk). */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const signals = [opts.signal, AbortSignal.timeout(opts.timeoutMs ?? 240_000)].filter((s) => s !== undefined)
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    signal: AbortSignal.any(signals),
    killSignal: 'SIGKILL',
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    stdout += s
  })
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s
  })
  if (opts.input !== undefined) child.stdin?.end(opts.input)
  const [code, signal] = (await once(child, 'close').catch((err: unknown) => {
    throw new Error(`${cmd}: ${err instanceof Error ? err.message : String(err)}; stderr: ${tail(stderr)}`)
  })) as [number | null, NodeJS.Signals | null]
  return { code, signal, stdout, stderr }
}

const SECRET_FLAGS = new Set(['--user', '-u', '--creds', '--src-creds', '--dest-creds', '--password', '-p'])

/** The command line for messages, with the values of credential flags blanked out. */
export function describeCommand(cmd: string, args: readonly string[]): string {
  const shown = args.map((arg, i) => {
    const flag = arg.split('=', 1)[0]!
    if (arg.includes('=') && SECRET_FLAGS.has(flag)) return `${flag}=***`
    return i > 0 && SECRET_FLAGS.has(args[i - 1]!) ? '***' : arg
  })
  return [cmd, ...shown].join(' ')
}

/** Runs a command and throws CommandError unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, opts)
  if (result.code !== 0) throw new CommandError(describeCommand(cmd, args), result)
  return result
}

export async function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `shoal-e2e-${label}-`))
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 })
}

/**
 * A port free on 127.0.0.1 now, for programs that must be told their port before they start (they cannot listen on
 * :0 and report back). Picked below the kernel's ephemeral range, so an outgoing connection made before the
 * program binds it cannot take it, as it could take one the kernel handed out for :0.
 */
export async function freePort(): Promise<number> {
  const low = await ephemeralLow()
  for (let tries = 0; low > FIXED_PORTS_FROM + 1000 && tries < 50; tries++) {
    const port = FIXED_PORTS_FROM + Math.floor(Math.random() * (low - FIXED_PORTS_FROM))
    if (await canListen(port)) return port
  }
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('no port from the kernel')
  return address.port
}

/** Below this, ports belong to well-known services more often. */
const FIXED_PORTS_FROM = 10_000

async function ephemeralLow(): Promise<number> {
  try {
    const [low] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/)
    return Number(low) || 32_768
  } catch {
    return 32_768
  }
}

async function canListen(port: number): Promise<boolean> {
  const server = createServer()
  try {
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
  } catch {
    return false
  }
  server.close()
  await once(server, 'close')
  return true
}

/**
 * Polls an HTTP endpoint until `ready(status)` holds. Polling is the only option here: the daemons
 * announce nothing when they become ready. Gives up early if `daemon` exits.
 */
export async function waitForHttp(
  url: string,
  opts: { ready?: (status: number) => boolean; daemon?: Daemon; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const ready = opts.ready ?? ((status) => status === 200)
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  let last = 'no answer'
  for (let delayMs = 20; Date.now() < deadline; delayMs = Math.min(delayMs * 2, 250)) {
    opts.signal?.throwIfAborted()
    if (opts.daemon !== undefined && !opts.daemon.running) {
      throw new DaemonError(`${opts.daemon.name} exited before ${url} was ready\n${opts.daemon.recentOutput()}`)
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      await res.body?.cancel()
      if (ready(res.status)) return
      last = `status ${res.status}`
    } catch (err) {
      last = err instanceof Error ? err.message : String(err)
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs))
  }
  const output = opts.daemon === undefined ? '' : `\n${opts.daemon.recentOutput()}`
  throw new DaemonError(`${url} not ready (${last})${output}`)
}
