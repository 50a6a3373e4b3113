import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  fetchBlob,
  type PushedImage,
  pushImage,
  type Registry,
  startAgent,
  startRegistry,
} from '../../harness/e2e/index.ts'

const MiB = 1024 * 1024
const LAYER_BYTES = 256 * MiB
// Holding the blob would grow the agent by all of it. Streaming grows it by buffers and garbage not yet
// collected: 54–87 MiB measured for 160–400 MiB blobs, not growing with the blob. Half the blob
// separates the two with room to spare.
const MAX_RSS_GROWTH_BYTES = LAYER_BYTES / 2

describe('a blob larger than 100 MiB', () => {
  const cleanup = new Cleanup()
  let origin: Registry
  let agent: Agent
  let app: PushedImage

  beforeAll(async () => {
    origin = cleanup.add(await startRegistry(), (r) => r.stop())
    app = cleanup.add(await pushImage(origin.url, 'big/one', 'v1', { layers: 1, layerBytes: LAYER_BYTES }), (i) =>
      i.cleanup(),
    )
    agent = cleanup.add(await startAgent({ origin: origin.url }), (a) => a.cleanup())
  })
  afterAll(() => cleanup.run())

  it('streams through the agent, cold and then cached, without the agent holding it in memory', async () => {
    const layer = app.image.blobs.reduce((a, b) => (b.size > a.size ? b : a))
    expect(layer.size).toBeGreaterThan(100 * MiB)
    // A small request first, so that lazily loaded code is already counted in the baseline.
    expect((await fetchBlob(agent.url, 'big/one', app.image.blobs.find((b) => b !== layer)!.digest)).status).toBe(200)
    const baseline = await agent.rssBytes()

    const cold = await fetchBlob(agent.url, 'big/one', layer.digest)
    expect(cold.status).toBe(200)
    expect(cold.bytes).toBe(layer.size)
    expect(cold.digest).toBe(layer.digest)
    const afterCold = await agent.peakRssBytes()

    const warm = await fetchBlob(agent.url, 'big/one', layer.digest)
    expect(warm.status).toBe(200)
    expect(warm.digest).toBe(layer.digest)
    const afterWarm = await agent.peakRssBytes()

    expect((await origin.blobGets(layer.digest)).count).toBe(1)
    const report = `baseline RSS ${(baseline / MiB).toFixed(1)} MiB, peak after cold ${(afterCold / MiB).toFixed(1)} MiB, after warm ${(afterWarm / MiB).toFixed(1)} MiB`
    console.info(`large blob (${(layer.size / MiB).toFixed(0)} MiB): ${report}`)
    expect(afterCold - baseline, report).toBeLessThan(MAX_RSS_GROWTH_BYTES)
    expect(afterWarm - baseline, report).toBeLessThan(MAX_RSS_GROWTH_BYTES)
  })
})
