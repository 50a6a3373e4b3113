/**
 * Where a simulated rollout loses time: every node's downlink and uplink use, the seeder's uplink, how many
 * transfers come into a node at once and how many of its upload slots are taken, sampled every `--every-ms` of
 * simulated time until each node is done. Same flags as `npm run bench:sim` (one size, the first scenario of
 * shoal-cold or shoal-preheated):
 *
 *   npx node bench/sim/utilisation.ts --nodes 16 --scenarios shoal-cold [--node-inflight 0]
 */
import { seededRandom } from '../../shared/swarm/scheduler/index.ts'
import { BenchUsageError } from '../fleet/errors.ts'
import { imageBlobs, parseSimArgs } from './config.ts'
import type { Link } from './flows.ts'
import { ShoalModel } from './shoal.ts'
import { hash32, type SimParams, World } from './world.ts'

export interface Utilisation {
  readonly doneAt: readonly number[]
  /** Means over nodes of each node's mean use until it was done (0..1). */
  readonly downBusy: number
  readonly upBusy: number
  /** The seeder's uplink over the same span (until the last node was done). */
  readonly seederUpBusy: number
  /** Samples of nodes not done yet, by transfers coming in (index = count, the last bucket "that many or more"). */
  readonly inbound: readonly number[]
  /** The same by upload slots taken. */
  readonly slotsTaken: readonly number[]
}

function use(l: Link): number {
  let rate = 0
  for (const f of l.flows) rate += f.rate
  return rate / l.capacity
}

export function utilisation(p: SimParams, preheated: boolean, everyMs = 100, buckets = 16): Utilisation {
  const w = new World(p, seededRandom(hash32(p.seed, preheated ? 'shoal-preheated' : 'shoal-cold', 'world')))
  const m = new ShoalModel(w, preheated)
  m.start()
  const n = w.nodes.length
  const down = new Float64Array(n)
  const up = new Float64Array(n)
  const samples = new Float64Array(n)
  const inbound = new Array<number>(buckets).fill(0)
  const slots = new Array<number>(buckets).fill(0)
  let seeder = 0
  let ticks = 0
  for (let t = everyMs; !m.finished && t <= p.limitMs; t += everyMs) {
    w.q.run({ endMs: t })
    for (let i = 0; i < n; i++) {
      if (m.agents[i]!.doneAt !== undefined) continue
      const h = w.nodes[i]!
      down[i]! += use(h.down)
      up[i]! += use(h.up)
      samples[i]!++
      inbound[Math.min(buckets - 1, h.down.flows.size)]!++
      slots[Math.min(buckets - 1, h.slots?.used ?? 0)]!++
    }
    seeder += use(w.seeder.up)
    ticks++
  }
  let d = 0
  let u = 0
  for (let i = 0; i < n; i++) {
    d += down[i]! / Math.max(1, samples[i]!)
    u += up[i]! / Math.max(1, samples[i]!)
  }
  return {
    doneAt: m.agents.map((a) => (a.doneAt ?? Number.NaN) / 1000),
    downBusy: d / n,
    upBusy: u / n,
    seederUpBusy: seeder / Math.max(1, ticks),
    inbound,
    slotsTaken: slots,
  }
}

function main(argv: readonly string[]): number {
  let cfg
  try {
    cfg = parseSimArgs(argv)
  } catch (err) {
    if (err instanceof BenchUsageError) {
      process.stderr.write(`${err.message}\n`)
      return 2
    }
    throw err
  }
  if (cfg === 'help') {
    process.stdout.write('usage: npx node bench/sim/utilisation.ts [the flags of npm run bench:sim]\n')
    return 0
  }
  const { blobBytes, manifestBytes } = imageBlobs(cfg.imageMib, cfg.layers)
  const p: SimParams = { ...cfg.base, nodes: cfg.sizes[0]!, blobBytes, manifestBytes, limitMs: 3_600_000 }
  const preheated = !cfg.scenarios.includes('shoal-cold')
  const r = utilisation(p, preheated)
  const sorted = r.doneAt.toSorted((a, b) => a - b)
  const pct = (a: readonly number[]) => {
    const all = a.reduce((x, y) => x + y, 0)
    return a.map((x) => `${((100 * x) / Math.max(1, all)).toFixed(0)}%`).join(' ')
  }
  process.stdout.write(
    [
      `N = ${p.nodes}, ${preheated ? 'preheated' : 'cold'}, seed ${p.seed}: p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} s, slowest ${sorted.at(-1)!.toFixed(1)} s`,
      `node downlinks busy ${r.downBusy.toFixed(3)}, node uplinks busy ${r.upBusy.toFixed(3)}, seeder uplink busy ${r.seederUpBusy.toFixed(3)}`,
      `transfers into a node (0, 1, 2, … ${r.inbound.length - 1}+): ${pct(r.inbound)}`,
      `upload slots taken on a node (0, 1, 2, …): ${pct(r.slotsTaken)}`,
      '',
    ].join('\n'),
  )
  return 0
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2))
