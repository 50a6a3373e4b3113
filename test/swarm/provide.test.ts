/**
 * Discovery (issue 3): an agent provides a blob while it holds it, re-provides it on a schedule, and stops when it
 * evicts it. Real agents and a seeder on loopback, with a one-second re-provide interval: provider records then
 * live two seconds, so a record nobody re-provides is gone within about 2.5 s while one that is re-provided stays.
 */
import { request } from 'undici'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { RunningAgent } from '../../agent/main.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { blobCid } from '../../shared/p2p/index.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'

const MiB = 1024 * 1024
const INTERVAL = ['--reprovide-interval', '1s']
/** Generous: a record dropped at 2 s + 0.25 s must be gone long before this, even under load. */
const DEADLINE_MS = 20_000

let fleet: Fleet | undefined
afterEach(async () => {
  await fleet?.stop()
  fleet = undefined
})

async function pull(agent: RunningAgent, digest: string): Promise<void> {
  const res = await request(`${agent.url}/v2/demo/app/blobs/${digest}`)
  expect(res.statusCode).toBe(200)
  await res.body.arrayBuffer()
}

/** Who the seeder's DHT says provides `digest` (its own records plus its peers'). */
async function providers(f: Fleet, digest: Digest): Promise<Set<string>> {
  const out = new Set<string>()
  try {
    for await (const p of f.seeder.node.contentRouting.findProviders(blobCid(digest), {
      signal: AbortSignal.timeout(3000),
    })) {
      out.add(p.id.toString())
    }
  } catch {
    // cut short by the timeout: what was found stands
  }
  return out
}

/** Asks again until `done` holds for an answer (the DHT is eventually consistent by design). */
async function until(f: Fleet, digest: Digest, done: (ids: Set<string>) => boolean): Promise<Set<string>> {
  const deadline = Date.now() + DEADLINE_MS
  for (;;) {
    const ids = await providers(f, digest)
    if (done(ids) || Date.now() > deadline) return ids
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe('provider records follow what an agent holds', () => {
  it('an agent that evicts a blob stops being a provider of it; one that keeps it stays one', async () => {
    fleet = await startFleet({
      agents: 0,
      layers: 2,
      layerBytes: 1 * MiB,
      chunkSize: '256KiB',
      agentArgs: INTERVAL,
      seederArgs: INTERVAL,
    })
    const f = fleet
    const [first, second] = [...f.image.blobs].sort((a, b) => b.size - a.size)
    // Room for either layer, not both: pulling the second evicts the first.
    const evicting = await f.startAgent(0, ['--cache-max-bytes', String(first!.size + second!.size - 1)])
    const keeping = await f.startAgent(1)
    const digest = first!.digest as Digest

    await pull(evicting, digest)
    await pull(keeping, digest)
    const both = await until(f, digest, (ids) => ids.has(evicting.peerId!) && ids.has(keeping.peerId!))
    const bothAt = Date.now()
    expect(both).toContain(evicting.peerId)
    expect(both).toContain(keeping.peerId)

    await pull(evicting, second!.digest)
    // Committed (and the first layer evicted) a moment after the client has its last byte.
    await vi.waitFor(
      async () => {
        const status = (await (await request(`${evicting.url}/status`)).body.json()) as { cache: { blobs: number } }
        expect(status.cache.blobs).toBe(1)
      },
      { timeout: 10_000 },
    )
    const evictedAt = Date.now()

    const after = await until(f, digest, (ids) => !ids.has(evicting.peerId!))
    const gone = Date.now() - evictedAt
    console.info(`provider record of the evicting agent gone from the seeder's lookups after ${gone} ms`)
    expect(after).not.toContain(evicting.peerId)
    // Records live 2 s and are swept every 0.25 s: once the keeping agent's first record is surely gone, it is
    // still found only because it re-provides. (Waiting on the clock is the point here: this is expiry.)
    const expired = bothAt + 2 * 1000 + 500 - Date.now()
    if (expired > 0) await new Promise((r) => setTimeout(r, expired))
    // Asked until found: a stalled machine can let one record lapse before the next re-provide lands.
    expect(await until(f, digest, (ids) => ids.has(keeping.peerId!))).toContain(keeping.peerId)
    expect(await providers(f, digest)).not.toContain(evicting.peerId)
  })

  it('an agent restarted over a full cache provides what it holds again', async () => {
    fleet = await startFleet({ agents: 0, layers: 1, layerBytes: 1 * MiB, chunkSize: '256KiB', agentArgs: INTERVAL })
    const f = fleet
    const layer = [...f.image.blobs].sort((a, b) => b.size - a.size)[0]!
    const digest = layer.digest as Digest
    const before = await f.startAgent(0)
    await pull(before, digest)
    await before.stop()
    // A new identity, so that a record can only come from the restarted agent's start-up announcement.
    const { rm } = await import('node:fs/promises')
    const { join } = await import('node:path')
    await rm(join(f.dir, 'agent-0', 'p2p'), { recursive: true, force: true })
    const after = await f.startAgent(0)
    expect(after.peerId).not.toBe(before.peerId)
    const ids = await until(f, digest, (s) => s.has(after.peerId!))
    expect(ids).toContain(after.peerId)
  })
})
