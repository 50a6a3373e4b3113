import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'undici'
import { Daemon } from './daemon.ts'
import type { ShoalTree } from './previous-main.ts'

/**
 * A `shoal agent` or `shoal seeder` of a given tree run as a child process, read only from the outside (its logs,
 * GET /status and /metrics), the way an operator sees it: the compat tests run nodes of two releases side by side,
 * and an old node's code cannot be imported into the test.
 */
export interface ShoalNode {
  readonly tree: ShoalTree
  readonly kind: 'agent' | 'seeder'
  readonly daemon: Daemon
  /** The agent's /v2/ mirror; the seeder's API. */
  readonly url: string
  /** Where /status and /metrics are: the agent's --metrics-listen, the seeder's API. */
  readonly opsUrl: string
  readonly peerId: string
  /** Its libp2p TCP address with its peer id, for another node's --seeder or --bootstrap. */
  readonly addr: string
  status(): Promise<NodeStatus>
  /** The value of one Prometheus series (0 when the series is absent), e.g. `shoal_digest_failures_total`. */
  metric(name: string, labels?: Readonly<Record<string, string>>): Promise<number>
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>
}

/** The fields of GET /status the compat tests read (agents and seeders have had them since they had /status). */
export interface NodeStatus {
  readonly peerId?: string
  readonly multiaddrs: readonly string[]
  readonly peerList?: readonly { readonly id: string; readonly seeder: boolean }[]
  /** Blob bytes received, by source (origin, seeder, peer). */
  readonly bytes: Readonly<Record<string, number>>
  /** Blob bytes sent, by whom they went to (client, peer). */
  readonly served: Readonly<Record<string, number>>
  /** Agents: chunks received over the bulk path and over streams, bulk attempts that fell back. */
  readonly chunks?: { readonly bulk: number; readonly stream: number; readonly fallbacks: number }
}

const START_TIMEOUT_MS = 30_000

/** The environment a node starts with: the test's, without SHOAL_* settings that would change its flags. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_')))
}

/**
 * Starts `shoal <kind> ARGS` of `tree` with the Node running the tests and resolves once it is ready. An agent is
 * given a metrics listener on 127.0.0.1 unless ARGS name one; every address should be on 127.0.0.1, port 0.
 */
export async function startShoalNode(
  tree: ShoalTree,
  kind: 'agent' | 'seeder',
  args: readonly string[],
  name = `${tree.label} ${kind}`,
): Promise<ShoalNode> {
  const argv = [...args]
  if (kind === 'agent' && !argv.includes('--metrics-listen')) argv.push('--metrics-listen', '127.0.0.1:0')
  const daemon = new Daemon(name, process.execPath, [tree.bin, kind, ...argv], { env: cleanEnv(), cwd: tree.root })
  try {
    const ready = await daemon.waitForLine(
      (line) => {
        if (!line.startsWith('{')) return undefined
        const rec = JSON.parse(line) as { msg?: string; url?: string; metrics?: string; api?: string }
        if (kind === 'agent' && rec.msg === 'agent listening' && rec.url !== undefined && rec.metrics !== undefined)
          return { url: rec.url, opsUrl: rec.metrics }
        if (kind === 'seeder' && rec.msg === 'seeder ready' && rec.api !== undefined)
          return { url: rec.api, opsUrl: rec.api }
        return undefined
      },
      { timeoutMs: START_TIMEOUT_MS },
    )
    const status = (): Promise<NodeStatus> => getJson<NodeStatus>(`${ready.opsUrl}/status`)
    const first = await status()
    const tcp = first.multiaddrs.find((m) => m.includes('/tcp/'))
    if (first.peerId === undefined || tcp === undefined)
      throw new Error(`${name}: no peer id or TCP address in /status (is its swarm on?)`)
    return {
      tree,
      kind,
      daemon,
      ...ready,
      peerId: first.peerId,
      addr: tcp.includes('/p2p/') ? tcp : `${tcp}/p2p/${first.peerId}`,
      status,
      metric: async (metric, labels = {}) => metricValue(await getText(`${ready.opsUrl}/metrics`), metric, labels),
      stop: async () => (await daemon.stop()).code,
    }
  } catch (err) {
    daemon.killNow()
    throw err
  }
}

/** Runs a one-shot `shoal ARGS` command of `tree` (preheat, status, …) to its end. */
export async function runShoal(
  tree: ShoalTree,
  args: readonly string[],
): Promise<{ readonly code: number | null; readonly output: string }> {
  const child = spawn(process.execPath, [tree.bin, ...args], {
    cwd: tree.root,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (b: Buffer) => (output += b.toString()))
  child.stderr.on('data', (b: Buffer) => (output += b.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, output }
}

/** Sums the samples of `name` whose labels include `labels` in a Prometheus text exposition. */
export function metricValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]))
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3])
  }
  return sum
}

async function getText(url: string): Promise<string> {
  const res = await request(url)
  const body = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode} ${body.slice(0, 200)}`)
  return body
}

async function getJson<T>(url: string): Promise<T> {
  return JSON.parse(await getText(url)) as T
}
