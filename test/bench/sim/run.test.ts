import { describe, expect, it } from 'vitest'
import { scenarioBound } from '../../../bench/fleet/bound.ts'
import { counters, simulate } from '../../../bench/sim/run.ts'
import type { SimParams } from '../../../bench/sim/world.ts'
import { smallWorld } from './params.ts'

const MIB = 1024 * 1024

function params(over: Partial<SimParams> = {}): SimParams {
  return smallWorld({
    links: { originUp: 40, cacheUp: 100, cacheDown: 100, seederUp: 200, seederDown: 200, nodeUp: 40, nodeDown: 40 },
    blobBytes: [8 * MIB],
    manifestBytes: 1000,
    seederUploadSlots: 3,
    maxPeers: 0,
    stallTimeoutMs: 15_000,
    chunkDeadlineMs: 10_000,
    seed: 7,
    ...over,
  })
}

function imageBytes(p: SimParams): number {
  return p.manifestBytes + p.blobBytes.reduce((a, b) => a + b, 0)
}

function seconds(r: ReturnType<typeof simulate>): number[] {
  return r.nodes.map((n) => n.seconds)
}

describe('simulate', () => {
  it('direct: N nodes share the origin uplink, so the last finishes at N·S/U_o (checked by hand)', () => {
    const p = params({ nodes: 3, rttMs: 0 })
    const r = simulate('direct', p)
    const S = imageBytes(p)
    // 3 × (8 MiB + 1000 B) over 40 Mbit/s = 5 MB/s; the fleet's T* for direct is looser (it counts node uplinks).
    const byHand = (3 * S) / 5e6
    expect(byHand).toBeGreaterThan(scenarioBound('direct', p.links, S, 3).seconds)
    // The last finishes at the bound; manifests go out one after another (0.2 ms each), so others a hair sooner.
    expect(Math.max(...seconds(r))).toBeCloseTo(byHand, 3)
    for (const t of seconds(r)) expect(Math.abs(t - byHand)).toBeLessThan(0.002)
    expect(r.rolloutCounters.origin!.txBytes - r.rolloutCounters.origin!.txPackets * 66).toBe(3 * S)
  })

  it('shoal cold, one node: the origin pace plus about one chunk behind it, never below T*', () => {
    const p = params({ nodes: 1 })
    const r = simulate('shoal-cold', p)
    const S = imageBytes(p)
    const bound = scenarioBound('shoal-cold', p.links, S, 1).seconds
    // S/U_o = 8 MiB / 5 MB/s ≈ 1.68 s; the last 1 MiB chunk then crosses the node's 5 MB/s link (0.21 s).
    const t = seconds(r)[0]!
    expect(t).toBeGreaterThanOrEqual(bound)
    expect(t).toBeLessThan(bound + (1.5 * MIB) / 5e6 + 0.05)
    expect(r.nodes.every((n) => n.ok)).toBe(true)
    // The blob and the manifest body (the seeder pulled it once for the nodes, shared/swarm/manifests).
    expect(r.bytesReceived.seeder).toBe(8 * MIB + p.manifestBytes)
  })

  it('shoal preheated: every node ends with the whole image; the seeder holds the manifest, the origin sends no body', () => {
    const p = params({ nodes: 6, blobBytes: [600, 8 * MIB, 3 * MIB + 5] })
    const r = simulate('shoal-preheated', p)
    const S = imageBytes(p)
    expect(r.nodes.every((n) => n.ok)).toBe(true)
    const { origin, seeder, peers } = r.bytesReceived
    // Every verified byte counted once, by who sent it.
    expect(origin + seeder + peers).toBe(6 * S)
    expect(origin).toBe(0)
    expect(seeder).toBeGreaterThanOrEqual(6 * p.manifestBytes)
    const c = r.scenarioCounters.origin!
    // The preheat's pull of the image, manifest included, and nothing per node (no control bytes in these params).
    expect(c.txBytes - c.txPackets * 66).toBe(S)
    expect(r.dht?.provides).toBe(6 * 3)
  })

  it('shoal cold: each node HEADs the origin; the body leaves the origin once, to the seeder, which serves the nodes', () => {
    const p = params({ nodes: 5, originControlBytesPerNode: 300, originResolveBytesPerNode: 40 })
    const r = simulate('shoal-cold', p)
    const S = imageBytes(p)
    expect(r.nodes.every((n) => n.ok)).toBe(true)
    expect(r.bytesReceived.origin).toBe(0)
    const c = r.scenarioCounters.origin!
    // The seeder's one pull of the image (the manifest with its GET's headers); per node its HEADs.
    expect(c.txBytes - c.txPackets * 66).toBe(S + 40 + 5 * (300 + 40))
  })

  it('conserves bytes over the whole fleet: sent = received', () => {
    const r = simulate('shoal-cold', params({ nodes: 8, blobBytes: [600, 4 * MIB, 4 * MIB] }))
    let tx = 0
    let rx = 0
    for (const c of Object.values(r.rolloutCounters)) {
      tx += c.txBytes - c.txPackets * 66
      rx += c.rxBytes - c.rxPackets * 66
    }
    // Header estimates round per host, so allow a few bytes per host.
    expect(Math.abs(tx - rx)).toBeLessThan(66 * 10)
    expect(rx).toBeGreaterThanOrEqual(r.bytesReceived.origin + r.bytesReceived.seeder + r.bytesReceived.peers)
  })

  it('is deterministic for a seed, and the seed matters', () => {
    // 24 chunks: enough that the schedulers' random tie-breaks among equally rare chunks change the run.
    const p = params({ nodes: 20, blobBytes: [600, 24 * MIB] })
    const a = simulate('shoal-preheated', p)
    const b = simulate('shoal-preheated', p)
    expect(seconds(a)).toEqual(seconds(b))
    expect(a.events).toBe(b.events)
    expect(seconds(simulate('shoal-preheated', { ...p, seed: 8 }))).not.toEqual(seconds(a))
  })

  it('counters() turns payload into link bytes the fleet report turns back exactly', () => {
    const c = counters(10_000_000, 1234)
    expect(c.txBytes - c.txPackets * 66).toBe(10_000_000)
    expect(c.rxBytes - c.rxPackets * 66).toBe(1234)
  })
})
