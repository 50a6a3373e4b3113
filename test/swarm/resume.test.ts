import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { pullImage } from '../../shared/sample/pull.ts'
import { bytesBySource, type Metrics } from '../../shared/metrics/index.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'

const MiB = 1024 * 1024

let fleet: Fleet | undefined
afterEach(async () => {
  await fleet?.stop()
  fleet = undefined
})

async function swarmBytes(metrics: Metrics): Promise<number> {
  const by = await bytesBySource(metrics)
  return (by['peer'] ?? 0) + (by['seeder'] ?? 0) + (by['origin'] ?? 0)
}

describe('an agent restarted in the middle of a swarm download', () => {
  it('resumes from the chunks it had verified: the rest only is fetched, and the blob is intact', async () => {
    // A throttled seeder makes the 24 MiB layer take seconds, so the restart lands mid-download.
    fleet = await startFleet({
      agents: 1,
      layers: 1,
      layerBytes: 24 * MiB,
      chunkSize: '256KiB',
      agentArgs: ['--stall-timeout', '60s'],
      seederArgs: ['--upload-rate', '4MiB'],
    })
    const f = fleet
    const layer = [...f.image.blobs].sort((a, b) => b.size - a.size)[0]!
    const first = f.agents[0]!

    // A client reads the layer through the agent; once a third of it has arrived, the agent goes down.
    const res = await request(`${first.url}/v2/demo/app/blobs/${layer.digest}`)
    expect(res.statusCode).toBe(200)
    let read = 0
    for await (const part of res.body) {
      read += (part as Uint8Array).byteLength
      if (read >= layer.size / 3) break // leaving the loop destroys the body: the client hangs up
    }
    expect(read).toBeLessThan(layer.size)
    // The client is gone first on purpose: agent.close() waits for responses in flight (Fastify's close), and
    // then for the idle keep-alive socket, so under a reading client it would return only after the whole blob.
    await first.stop()
    const before = await swarmBytes(first.metrics)
    expect(before).toBeGreaterThanOrEqual(read)
    expect(before).toBeLessThan(layer.size)

    const second = await f.startAgent(0)
    expect(second.peerId).toBe(first.peerId)
    const r = await pullImage(second.url, 'demo/app', 'v1')
    expect(r.blobs).toBe(f.image.blobs.length)
    const others = f.image.blobs.reduce((n, b) => n + (b.digest === layer.digest ? 0 : b.size), 0)
    const after = (await swarmBytes(second.metrics)) - others
    // What was verified before the restart is not fetched again.
    expect(after).toBeLessThanOrEqual(layer.size - read)
    expect(after).toBeGreaterThan(0)
    // The origin sent the layer once, to the seeder.
    expect(f.origin.stats.perBlob.get(layer.digest)?.requests).toBe(1)
  })
})
