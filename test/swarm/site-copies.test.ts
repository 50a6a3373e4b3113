import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningAgent } from '../../agent/main.ts'
import type { CliIo } from '../../cli/io.ts'
import { preheatMain } from '../../cli/preheat.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'
import { agentSiteOf } from '../../seeder/agent-sites.ts'
import { peerIdFromString } from '@libp2p/peer-id'

/** Three agents in site-a, one in site-b, all real (libp2p over TCP, the seeder and origin on loopback). */
const SITES = ['site-a', 'site-a', 'site-a', 'site-b'] as const

let fleet: Fleet
const agents: RunningAgent[] = []
beforeAll(async () => {
  fleet = await startFleet({ agents: 0, layers: 3, layerBytes: 512 * 1024 })
  for (const [i, site] of SITES.entries()) agents.push(await fleet.startAgent(i, ['--site', site]))
  // The seeder learns each agent's site from identify (its user agent) when the agent connects to it.
  const siteOf = agentSiteOf(fleet.seeder.node)
  const deadline = Date.now() + 20_000
  for (const [i, agent] of agents.entries()) {
    while ((await siteOf(peerIdFromString(agent.peerId!))) !== SITES[i]) {
      if (Date.now() > deadline) throw new Error(`the seeder never learned agent ${i}'s site`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}, 60_000)
afterAll(async () => {
  await fleet?.stop()
})

function quietIo(): CliIo & { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return {
    stdout: { isTTY: false, write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    out: () => out,
    err: () => err,
  }
}

/** Blobs in the agent's cache, from its /status. */
async function cachedBlobs(agent: RunningAgent): Promise<number> {
  const status = (await (await fetch(`${agent.url}/status`)).json()) as { cache: { blobs: number } }
  return status.cache.blobs
}

/** The agent's pinned blobs and their deadlines, as it keeps them across restarts (its data dir). */
async function pinned(i: number): Promise<Record<string, number>> {
  try {
    return JSON.parse(await readFile(join(fleet.dir, `agent-${i}`, 'preheat-retention.json'), 'utf8')) as Record<
      string,
      number
    >
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
}

describe('copies per site, end to end', () => {
  it('`shoal preheat --site-copies site-a=2` has exactly two agents of site-a hold the image, pinned', async () => {
    const io = quietIo()
    const started = Date.now()
    expect(
      await preheatMain(['--seeder', fleet.seeder.apiUrl, '--site-copies', 'site-a=2', 'demo/app:v1'], io, {
        pollMs: 20,
      }),
      io.err(),
    ).toBe(0)
    const digests = fleet.image.blobs.map((b) => b.digest).sort()
    const holders: number[] = []
    for (const [i, agent] of agents.entries()) {
      const blobs = await cachedBlobs(agent)
      if (blobs === 0) continue
      expect(blobs, `agent ${i}`).toBe(digests.length)
      holders.push(i)
    }
    // Two agents of site-a, none of site-b (not asked for), and nothing pulled by the third of site-a.
    expect(holders).toHaveLength(2)
    for (const i of holders) expect(SITES[i]).toBe('site-a')
    // Each holder pins every blob of the image for its --preheat-ttl (24 h by default); the file is written just
    // after the hold, so it is polled briefly.
    const ttlMs = 24 * 3_600_000
    for (const i of holders) {
      let pins = await pinned(i)
      for (let tries = 0; Object.keys(pins).length < digests.length && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 20))
        pins = await pinned(i)
      }
      expect(Object.keys(pins).sort(), `agent ${i}`).toEqual(digests)
      for (const until of Object.values(pins)) {
        expect(until).toBeGreaterThanOrEqual(started + ttlMs)
        expect(until).toBeLessThanOrEqual(Date.now() + ttlMs)
      }
    }
    for (const [i] of agents.entries()) if (!holders.includes(i)) expect(await pinned(i), `agent ${i}`).toEqual({})
  }, 60_000)
})
