/**
 * Copies per site, end to end: `shoal preheat --site-copies store-a=2` against a real seeder makes exactly two agents
 * of store-a hold the image, pinned for their --preheat-ttl, and nobody else.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningAgent } from '../../agent/main.ts'
import { preheatMain } from '../../cli/preheat.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'

const SITES = ['store-a', 'store-a', 'store-a', 'store-b', 'store-b'] as const
const TTL_MS = 3_600_000

let fleet: Fleet
const agents: { agent: RunningAgent; site: string; index: number }[] = []
beforeAll(async () => {
  fleet = await startFleet({ agents: 0, layers: 3, layerBytes: 512 * 1024 })
  for (const [index, site] of SITES.entries()) {
    const agent = await fleet.startAgent(index, ['--site', site, '--preheat-ttl', `${TTL_MS / 1000}s`])
    agents.push({ agent, site, index })
  }
}, 60_000)
afterAll(async () => {
  await fleet?.stop()
})

async function cachedBlobs(url: string): Promise<number> {
  return ((await (await fetch(`${url}/status`)).json()) as { cache: { blobs: number } }).cache.blobs
}

/** The agent's held copies as it wrote them at stop: digest → pinned until (ms since the epoch). */
async function heldAtStop(index: number): Promise<Map<string, number>> {
  const text = await readFile(join(fleet.dir, `agent-${index}`, 'preheat-retention.json'), 'utf8').catch(() => '{}')
  return new Map(Object.entries(JSON.parse(text) as Record<string, number>))
}

describe('copies per site', () => {
  it('shoal preheat --site-copies store-a=2: two agents of store-a hold the image, pinned, and nobody else', async () => {
    // The seeder learns each agent's site from its libp2p identify; wait until it sees all five agents.
    for (let i = 0; i < 200; i++) {
      const status = (await (await fetch(`${fleet.seeder.apiUrl}/status`)).json()) as { peers?: number }
      if ((status.peers ?? 0) >= SITES.length) break
      await new Promise((r) => setTimeout(r, 50))
    }
    let out = ''
    let err = ''
    const code = await preheatMain(
      ['--seeder', fleet.seeder.apiUrl, `${new URL(fleet.origin.url).host}/demo/app:v1`, '--site-copies', 'store-a=2'],
      { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } },
      { pollMs: 50 },
    )
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(out).toContain('sites: store-a 2/2 held')

    const blobs = fleet.image.blobs.length
    const holding = []
    for (const a of agents) if ((await cachedBlobs(a.agent.url)) > 0) holding.push(a)
    expect(holding.map((a) => a.site)).toEqual(['store-a', 'store-a'])
    for (const a of holding) expect(await cachedBlobs(a.agent.url)).toBe(blobs)

    // Pinned: each holder wrote every blob of the image into its retention file, held for about its TTL.
    const before = Date.now()
    for (const a of agents) await a.agent.stop()
    for (const a of agents) {
      const held = await heldAtStop(a.index)
      if (!holding.includes(a)) {
        expect(held.size, `agent ${a.index}`).toBe(0)
        continue
      }
      expect([...held.keys()].sort()).toEqual(fleet.image.blobs.map((b) => b.digest).sort())
      for (const until of held.values()) expect(until).toBeGreaterThan(before + TTL_MS - 120_000)
    }
  }, 90_000)
})
