import { afterEach, describe, expect, it } from 'vitest'
import { pullImage } from '../../shared/sample/pull.ts'
import { bytesBySource } from '../../shared/metrics/index.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'

let fleet: Fleet | undefined
afterEach(async () => {
  await fleet?.stop()
  fleet = undefined
})

describe('a swarm of 1 seeder and 8 agents', () => {
  it('pulls one image at once on every agent, the origin sending each blob once, mostly peer to peer', async () => {
    // A generous stall limit: this asserts where bytes come from, not how fast a loaded CI machine is.
    fleet = await startFleet({
      agents: 8,
      layers: 3,
      layerBytes: 2 * 1024 * 1024,
      agentArgs: ['--stall-timeout', '60s'],
    })
    const f = fleet
    // pullImage checks every manifest and blob digest itself.
    const results = await Promise.all(f.agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    const imageBytes = f.image.blobs.reduce((n, b) => n + b.size, 0)
    for (const r of results) expect(r.blobBytes).toBe(imageBytes)
    // Counted at the origin, not from Shoal's metrics.
    for (const b of f.image.blobs) expect(f.origin.stats.perBlob.get(b.digest)?.requests ?? 0).toBe(1)
    expect(f.origin.stats.blobBytesServed).toBe(imageBytes)
    let fromPeers = 0
    let total = 0
    for (const a of f.agents) {
      const by = await bytesBySource(a.metrics)
      fromPeers += by['peer'] ?? 0
      total += (by['peer'] ?? 0) + (by['seeder'] ?? 0) + (by['origin'] ?? 0)
    }
    if (total !== 8 * imageBytes)
      console.log(JSON.stringify(await Promise.all(f.agents.map((a) => bytesBySource(a.metrics)))), imageBytes)
    expect(total).toBe(8 * imageBytes)
    expect(fromPeers / total).toBeGreaterThan(0.5)
  }, 120_000)
})
