import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { type Fleet, startFleet } from '../../harness/fleet.ts'

let fleet: Fleet | undefined
afterEach(async () => {
  await fleet?.stop()
  fleet = undefined
})

async function scrape(url: string, name: string): Promise<number | undefined> {
  const text = await (await request(`${url}/metrics`)).body.text()
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return m === null ? undefined : Number(m[1])
}

describe('swarm gauges and status', () => {
  it('agents and the seeder report their connected peers; the seeder is named as one', async () => {
    fleet = await startFleet({ agents: 2, agentArgs: ['--metrics-listen', '127.0.0.1:0'] })
    const [a] = fleet.agents
    // Each agent dials the seeder at start; the seeder sees both.
    await expect.poll(() => scrape(fleet!.seeder.apiUrl, 'shoal_peers_connected')).toBe(2)
    await expect.poll(() => scrape(a!.metricsUrl!, 'shoal_peers_connected')).toBeGreaterThanOrEqual(1)
    const status = (await (await request(`${a!.metricsUrl}/status`)).body.json()) as {
      peers: number
      peerList: { id: string; seeder: boolean }[]
    }
    expect(status.peerList).toContainEqual({ id: fleet.seeder.peerId, seeder: true })
    expect(status.peers).toBe(status.peerList.length)
    expect(await scrape(a!.metricsUrl!, 'shoal_peers_connected')).toBe(status.peers)
  })
})
