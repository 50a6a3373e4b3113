import { afterEach, describe, expect, it } from 'vitest'
import { bytesBySource } from '../../shared/metrics/index.ts'
import { pullImage } from '../../shared/sample/pull.ts'
import { type PeerFleet, startPeerFleet } from '../../harness/fleet.ts'

let fleet: PeerFleet | undefined
afterEach(async () => {
  await fleet?.stop()
  fleet = undefined
})

describe('a swarm of 5 agents with no seeder', () => {
  it('with a swarm key: all pulling one image at once, the origin sends each blob about once', async () => {
    // A generous stall limit: this asserts where bytes come from, not how fast a loaded machine is.
    fleet = await startPeerFleet({
      agents: 5,
      layers: 3,
      layerBytes: 2 * 1024 * 1024,
      agentArgs: ['--stall-timeout', '30s'],
    })
    const f = fleet
    // pullImage checks every manifest and blob digest itself.
    const results = await Promise.all(f.agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    const imageBytes = f.image.blobs.reduce((n, b) => n + b.size, 0)
    for (const r of results) expect(r.blobBytes).toBe(imageBytes)
    // Counted at the origin, not from Shoal's metrics.
    const perBlob = f.image.blobs.map((b) => f.origin.stats.perBlob.get(b.digest))
    expect(f.origin.stats.blobBytesServed, JSON.stringify(perBlob)).toBeLessThanOrEqual(1.05 * imageBytes)
    let fromPeers = 0
    for (const a of f.agents) fromPeers += (await bytesBySource(a.metrics))['peer'] ?? 0
    expect(fromPeers).toBeGreaterThanOrEqual(3 * imageBytes)
  }, 120_000)

  it('with neither a swarm key nor --trust-peer-maps: shares nothing, as before (each agent pulls from the origin)', async () => {
    fleet = await startPeerFleet({ agents: 3, layers: 2, layerBytes: 1024 * 1024, swarmKey: false })
    const f = fleet
    await Promise.all(f.agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    const imageBytes = f.image.blobs.reduce((n, b) => n + b.size, 0)
    expect(f.origin.stats.blobBytesServed).toBe(3 * imageBytes)
  }, 120_000)

  it('with --trust-peer-maps and no swarm key: shares', async () => {
    fleet = await startPeerFleet({
      agents: 3,
      layers: 2,
      layerBytes: 1024 * 1024,
      swarmKey: false,
      agentArgs: ['--trust-peer-maps', '--stall-timeout', '30s'],
    })
    const f = fleet
    await Promise.all(f.agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    const imageBytes = f.image.blobs.reduce((n, b) => n + b.size, 0)
    expect(f.origin.stats.blobBytesServed).toBeLessThanOrEqual(1.05 * imageBytes)
  }, 120_000)
})

describe('5 agents with no seeder started at the same moment', () => {
  it('elect the same puller once they find each other: the origin sends each blob about once', async () => {
    // The first agent comes up last: the others' first bootstrap dial finds nobody there.
    fleet = await startPeerFleet({
      agents: 5,
      layers: 3,
      layerBytes: 2 * 1024 * 1024,
      together: true,
      agentArgs: ['--stall-timeout', '30s'],
    })
    const f = fleet
    const results = await Promise.all(f.agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    const imageBytes = f.image.blobs.reduce((n, b) => n + b.size, 0)
    for (const r of results) expect(r.blobBytes).toBe(imageBytes)
    const perBlob = f.image.blobs.map((b) => f.origin.stats.perBlob.get(b.digest))
    expect(f.origin.stats.blobBytesServed, JSON.stringify(perBlob)).toBeLessThanOrEqual(1.05 * imageBytes)
  }, 120_000)
})
