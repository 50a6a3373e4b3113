import { describe, expect, it } from 'vitest'
import { FlowNet, Link } from '../../../bench/sim/flows.ts'
import { EventQueue } from '../../../bench/sim/queue.ts'
import { imageBytesOf, runSites } from '../../../bench/sim/sites.ts'
import type { SimParams } from '../../../bench/sim/world.ts'
import { SLOT_WAIT_MS } from '../../../shared/swarm/serve/index.ts'

const MIB = 1024 * 1024

// The real configuration, smaller image: 2 sites x 3 nodes, LAN 200 Mbit/s, WAN 24 Mbit/s.
const PARAMS: Omit<SimParams, 'sites' | 'limitMs'> = {
  nodes: 6,
  links: {
    originUp: 1000,
    cacheUp: 1000,
    cacheDown: 1000,
    seederUp: 1000,
    seederDown: 1000,
    nodeUp: 200,
    nodeDown: 200,
  },
  blobBytes: [600, 8 * MIB, 8 * MIB],
  manifestBytes: 800,
  chunkBytes: 1 * MIB,
  rttMs: 20,
  wireEfficiency: 1,
  uploadSlots: 3,
  seederUploadSlots: 8,
  sendBufferBytes: 0,
  slotWaitMs: SLOT_WAIT_MS,
  lookupPeriodMs: 1000,
  lookupLatencyMs: 50,
  lookupResults: 20,
  dhtReplication: 20,
  provideLatencyMs: 100,
  maxPeers: 40,
  hints: 16,
  stallTimeoutMs: 60_000,
  chunkDeadlineMs: 30_000,
  originControlBytesPerNode: 0,
  seed: 1,
}
const SHAPE = { sites: 2, siteNodes: 3, wanMbit: 24 }

describe('FlowNet across WAN links', () => {
  it('limits a flow by every link on its path and counts its bytes on each', () => {
    const q = new EventQueue()
    const net = new FlowNet(q)
    const up = new Link('a.up', 10)
    const wan = new Link('wan', 2)
    const down = new Link('b.down', 10)
    let doneAt = -1
    net.start(up, down, 100, () => (doneAt = q.now), [wan])
    q.run({ endMs: 1000, until: () => doneAt >= 0 })
    expect(doneAt).toBeCloseTo(50)
    expect(wan.bytes).toBe(100)
  })
})

describe('simulated edge sites', () => {
  it('with sites known, each site takes about one S across its WAN link; flat and direct take several', () => {
    const r = runSites({
      params: PARAMS,
      shape: SHAPE,
      scenarios: ['direct', 'shoal-flat', 'shoal-sites'],
      preheated: false,
      limitFactor: 20,
    })
    const by = new Map(r.map((x) => [x.scenario, x]))
    for (const x of r) expect(x.nodesOk).toBe(6)
    expect(Math.max(...by.get('direct')!.wanIn)).toBeGreaterThan(2.9)
    expect(Math.max(...by.get('shoal-flat')!.wanIn)).toBeGreaterThan(1.5)
    expect(Math.max(...by.get('shoal-sites')!.wanIn)).toBeLessThanOrEqual(1.15)
    expect(by.get('shoal-sites')!.max).toBeLessThan(by.get('shoal-flat')!.max)
  })

  it('a site whose WAN is cut for 20 s mid-rollout finishes, with at most one extra S across it', () => {
    const [r] = runSites({
      params: PARAMS,
      shape: SHAPE,
      scenarios: ['shoal-sites'],
      preheated: false,
      limitFactor: 20,
      cut: { site: 0, fromMs: 2000, toMs: 22_000 },
    })
    expect(r!.nodesOk).toBe(6)
    expect(r!.wanIn[0]).toBeLessThanOrEqual(2)
    // The cut site finished after the link came back, and nobody fell back to the origin.
    expect(Math.min(...r!.run.nodes.slice(0, 3).map((n) => n.seconds))).toBeGreaterThan(22)
    expect(r!.fallbacks).toBe(0)
  })

  it('a cut longer than the stall timeout sends one member per blob to the origin, not the whole site', () => {
    const S = imageBytesOf(PARAMS)
    const [r] = runSites({
      params: { ...PARAMS, stallTimeoutMs: 15_000 },
      shape: SHAPE,
      scenarios: ['shoal-sites'],
      preheated: false,
      limitFactor: 20,
      cut: { site: 0, fromMs: 2000, toMs: 22_000 },
    })
    expect(r!.nodesOk).toBe(6)
    const layers = PARAMS.blobBytes.length - 1
    expect(r!.fallbacks).toBeLessThanOrEqual(layers)
    // At most one copy of the image from the origin (each node fetches its own manifest there anyway).
    expect(r!.run.bytesReceived.origin).toBeLessThanOrEqual(S + PARAMS.nodes * PARAMS.manifestBytes)
  })
})
