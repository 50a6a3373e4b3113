import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { LinkCounters } from './counters.ts'
import { busyFraction, type CpuSnapshot, readCpu } from './cpu.ts'
import type { Fleet } from './fleet.ts'
import type { BenchImage } from './image.ts'
import type { Command } from './netns.ts'
import { run } from './proc.ts'

export interface NodeResult {
  readonly node: string
  readonly ok: boolean
  /** From the common start of the rollout to this node's client exiting. */
  readonly seconds: number
  readonly error?: string
}

export interface PullJob {
  readonly node: string
  readonly command: Command
  readonly dest: string
}

/** Starts every node's pull in the same tick and times each from that common start. */
export async function rollout(
  jobs: readonly PullJob[],
  image: BenchImage,
  opts: { timeoutMs: number; signal: AbortSignal; env: NodeJS.ProcessEnv },
): Promise<readonly NodeResult[]> {
  const t0 = performance.now()
  // run() spawns before its first await, so every client is started before any of them is awaited.
  const pending = jobs.map(async (job): Promise<NodeResult> => {
    const r = await run(job.command, {
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      env: opts.env,
    }).catch((err: unknown) => ({
      code: null,
      signal: null,
      stdout: '',
      stderr: err instanceof Error ? err.message : String(err),
    }))
    const seconds = (performance.now() - t0) / 1000
    if (r.code !== 0) {
      const why = r.signal === null ? `exit ${r.code}` : `killed (${r.signal}) after ${seconds.toFixed(1)} s`
      return {
        node: job.node,
        ok: false,
        seconds,
        error: `${why}: ${lastLine(r.stderr || r.stdout)}`,
      }
    }
    const missing = await missingBlobs(job.dest, image)
    if (missing !== undefined) return { node: job.node, ok: false, seconds, error: missing }
    return { node: job.node, ok: true, seconds }
  })
  return Promise.all(pending)
}

function lastLine(text: string): string {
  return (text.trim().split('\n').at(-1) ?? '').slice(0, 500)
}

/** An OCI layout keeps each blob at blobs/<algorithm>/<hex>; a client that exits 0 must have them all, full size. */
export async function missingBlobs(dest: string, image: BenchImage): Promise<string | undefined> {
  for (const b of image.blobs) {
    const colon = b.digest.indexOf(':')
    const path = join(dest, 'blobs', b.digest.slice(0, colon), b.digest.slice(colon + 1))
    const size = await stat(path).then(
      (s) => s.size,
      () => -1,
    )
    if (size !== b.size) return `blob ${b.digest} ${size < 0 ? 'missing' : `has ${size} of ${b.size} bytes`}`
  }
  return undefined
}

/** One sampling interval: machine CPU and what each kind of host sent (bytes/s, link counters). */
export interface Sample {
  /** Seconds since the rollout started, at the end of the interval. */
  readonly t: number
  readonly cpuBusy: number
  readonly originTxBps: number
  readonly cacheTxBps: number
  readonly seederTxBps: number
  readonly nodesTxBps: number
  readonly nodesRxBps: number
}

export function groupCounters(fleet: Fleet, counters: ReadonlyMap<string, LinkCounters>) {
  const get = (name: string) =>
    counters.get(name) ?? {
      txBytes: 0,
      rxBytes: 0,
      txPackets: 0,
      rxPackets: 0,
    }
  let nodesTx = 0
  let nodesRx = 0
  for (const n of fleet.nodes) {
    nodesTx += get(n.name).txBytes
    nodesRx += get(n.name).rxBytes
  }
  return {
    origin: get(fleet.origin.name).txBytes,
    cache: get(fleet.cache.name).txBytes,
    seeder: get(fleet.seeder.name).txBytes,
    nodesTx,
    nodesRx,
  }
}

/** Samples CPU and link counters every `intervalMs` until stopped. */
export class Sampler {
  readonly #fleet: Fleet
  readonly #intervalMs: number
  readonly #samples: Sample[] = []
  readonly #stop = new AbortController()
  #loop: Promise<void> | undefined

  constructor(fleet: Fleet, intervalMs: number) {
    this.#fleet = fleet
    this.#intervalMs = intervalMs
  }

  start(t0: number): void {
    this.#loop = this.#run(t0)
  }

  async #run(t0: number): Promise<void> {
    let cpu: CpuSnapshot = await readCpu()
    let net = groupCounters(this.#fleet, await this.#fleet.counters())
    let at = performance.now()
    while (!this.#stop.signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#intervalMs)
        this.#stop.signal.addEventListener('abort', () => {
          clearTimeout(timer)
          resolve()
        })
      })
      const [cpu2, counters] = await Promise.all([readCpu(), this.#fleet.counters().catch(() => undefined)])
      if (counters === undefined) continue
      const net2 = groupCounters(this.#fleet, counters)
      const now = performance.now()
      const dt = (now - at) / 1000
      if (dt <= 0.05) continue
      this.#samples.push({
        t: (now - t0) / 1000,
        cpuBusy: busyFraction(cpu.all, cpu2.all),
        originTxBps: (net2.origin - net.origin) / dt,
        cacheTxBps: (net2.cache - net.cache) / dt,
        seederTxBps: (net2.seeder - net.seeder) / dt,
        nodesTxBps: (net2.nodesTx - net.nodesTx) / dt,
        nodesRxBps: (net2.nodesRx - net.nodesRx) / dt,
      })
      cpu = cpu2
      net = net2
      at = now
    }
  }

  async stop(): Promise<readonly Sample[]> {
    this.#stop.abort()
    await this.#loop?.catch(() => {})
    return this.#samples
  }
}
