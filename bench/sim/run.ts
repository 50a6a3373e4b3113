import type { LinkCounters } from '../fleet/counters.ts'
import type { NodeResult } from '../fleet/rollout.ts'
import { seededRandom } from '../../shared/swarm/scheduler/index.ts'
import { type ShoalStats, ShoalModel } from './shoal.ts'
import {
  HEADER_BYTES_PER_PACKET,
  type Host,
  hash32,
  MSS_BYTES,
  type SimParams,
  type SimScenario,
  World,
} from './world.ts'

export interface DhtSummary {
  readonly provides: number
  readonly lookups: number
  readonly lookupsPerNode: { readonly mean: number; readonly max: number }
  /** Provider records each node stores (only the K closest to a key store any). */
  readonly recordsPerNode: { readonly mean: number; readonly max: number; readonly nodesHolding: number }
  /** Providers of the most-provided blob: the length of a GET_PROVIDERS answer from a record holder. */
  readonly maxProvidersPerKey: number
}

export interface SimRun {
  readonly scenario: SimScenario
  readonly nodes: readonly NodeResult[]
  /** Counters over the rollout alone, and over setup + rollout (a preheat's origin pull). */
  readonly rolloutCounters: Readonly<Record<string, LinkCounters>>
  readonly scenarioCounters: Readonly<Record<string, LinkCounters>>
  readonly bytesReceived: { readonly origin: number; readonly seeder: number; readonly peers: number }
  readonly dht?: DhtSummary
  readonly shoal?: ShoalStats
  /** Edge sites: payload bytes across each site's WAN link, into the site and out of it (index = site). */
  readonly wan?: { readonly inBytes: readonly number[]; readonly outBytes: readonly number[] }
  readonly events: number
  readonly flowUpdates: number
  readonly simulatedS: number
  readonly wallS: number
}

/** Link counters as the fleet reads them: payload plus 66 header bytes per MSS-sized packet. */
export function counters(txPayload: number, rxPayload: number): LinkCounters {
  const txPackets = Math.ceil(txPayload / MSS_BYTES)
  const rxPackets = Math.ceil(rxPayload / MSS_BYTES)
  return {
    txBytes: txPayload + txPackets * HEADER_BYTES_PER_PACKET,
    txPackets,
    rxBytes: rxPayload + rxPackets * HEADER_BYTES_PER_PACKET,
    rxPackets,
  }
}

function hostCounters(hosts: readonly Host[], extra: ReadonlyMap<string, number> = new Map()) {
  const out: Record<string, LinkCounters> = {}
  for (const h of hosts) out[h.id] = counters(h.up.bytes + h.extraTx + (extra.get(h.id) ?? 0), h.down.bytes)
  return out
}

function mean(a: Float64Array): number {
  let s = 0
  for (const v of a) s += v
  return a.length > 0 ? s / a.length : 0
}

function max(a: Float64Array): number {
  let m = 0
  for (const v of a) if (v > m) m = v
  return m
}

/** Simulated time between two progress reports. */
const PROGRESS_EVERY_MS = 10_000

/** What a long run reports every 10 simulated seconds. */
export type SimProgress = (at: { simulatedS: number; nodesDone: number; events: number }) => void

/** Runs one scenario to the end (or `limitMs` of simulated time). */
export function simulate(scenario: SimScenario, p: SimParams, onProgress?: SimProgress): SimRun {
  const t0 = performance.now()
  const w = new World(p, seededRandom(hash32(p.seed, scenario, 'world')))
  const hosts = [w.origin, w.seeder, ...w.nodes]
  let doneAt: (number | undefined)[]
  let received = { origin: 0, seeder: 0, peers: 0 }
  let model: ShoalModel | undefined
  if (scenario === 'direct') {
    doneAt = direct(w)
  } else {
    model = new ShoalModel(w, scenario === 'shoal-preheated')
    const cut = p.sites?.cut
    if (cut !== undefined) w.q.at(cut.fromMs, () => model!.cutWan(cut.site))
    model.start()
    const m = model
    for (let until = PROGRESS_EVERY_MS; !m.finished && w.q.size > 0; until += PROGRESS_EVERY_MS) {
      w.q.run({ endMs: Math.min(until, p.limitMs), until: () => m.finished })
      if (until >= p.limitMs) break
      onProgress?.({ simulatedS: w.q.now / 1000, nodesDone: m.nodesDone, events: w.q.ran })
    }
    const outcomes = model.outcomes()
    doneAt = outcomes.map((o) => o.doneAt)
    for (const o of outcomes) {
      received = {
        origin: received.origin + o.fromOrigin,
        seeder: received.seeder + o.fromSeeder,
        peers: received.peers + o.fromPeers,
      }
    }
  }
  if (scenario === 'direct') {
    received = { origin: w.nodes.reduce((n, h) => n + h.down.bytes, 0), seeder: 0, peers: 0 }
  }
  const end = w.q.now
  const nodes: NodeResult[] = w.nodes.map((h, i) => {
    const at = doneAt[i]
    return at === undefined
      ? { node: h.id, ok: false, seconds: end / 1000, error: `not done after ${(end / 1000).toFixed(1)} simulated s` }
      : { node: h.id, ok: true, seconds: at / 1000 }
  })
  const rolloutCounters = hostCounters(hosts)
  // The preheat pulled every blob and resolved the manifest (the seeder keeps it for agents) at the origin once.
  const preheat = scenario === 'shoal-preheated' ? new Map([['origin', w.imageBytes]]) : undefined
  const scenarioCounters = preheat === undefined ? rolloutCounters : hostCounters(hosts, preheat)
  const dht =
    model === undefined
      ? undefined
      : {
          provides: model.dht.provides,
          lookups: model.dht.lookups,
          lookupsPerNode: { mean: mean(model.dht.lookupsPerNode), max: max(model.dht.lookupsPerNode) },
          recordsPerNode: {
            mean: mean(model.dht.recordsPerNode),
            max: max(model.dht.recordsPerNode),
            nodesHolding: model.dht.recordsPerNode.filter((v) => v > 0).length,
          },
          maxProvidersPerKey: Math.max(0, ...w.blobs.map((b) => model!.dht.providers(b.index))),
        }
  return {
    scenario,
    nodes,
    rolloutCounters,
    scenarioCounters,
    bytesReceived: received,
    ...(dht === undefined ? {} : { dht }),
    ...(model === undefined ? {} : { shoal: model.stats() }),
    ...(w.wan.length === 0
      ? {}
      : { wan: { inBytes: w.wan.map((l) => l.down.bytes), outBytes: w.wan.map((l) => l.up.bytes) } }),
    events: w.q.ran,
    flowUpdates: w.net.updates,
    simulatedS: end / 1000,
    wallS: (performance.now() - t0) / 1000,
  }
}

/** Every node pulls the manifest and then all blobs at once from the origin. */
function direct(w: World): (number | undefined)[] {
  const { q, p, origin } = w
  const doneAt: (number | undefined)[] = w.nodes.map(() => undefined)
  w.nodes.forEach((h, i) => {
    origin.extraTx += p.originControlBytesPerNode
    q.after(2 * p.rttMs, () => {
      w.sendSmall(origin, h, p.manifestBytes, () => {
        let pending = w.blobs.length
        q.after(w.latMs + p.rttMs, () => {
          for (const b of w.blobs) {
            w.send(origin, h, b.bytes, () => {
              q.after(w.latMs, () => {
                if (--pending === 0) doneAt[i] = q.now
              })
            })
          }
        })
      })
    })
  })
  q.run({ endMs: p.limitMs, until: () => doneAt.every((t) => t !== undefined) })
  return doneAt
}
