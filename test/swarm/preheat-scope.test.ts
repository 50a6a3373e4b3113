import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pullImage } from '../../shared/sample/pull.ts'
import { createLogger } from '../../shared/log/index.ts'
import { createP2PNode, loadOrCreateIdentity } from '../../shared/p2p/index.ts'
import { freePort } from '../../harness/e2e/process.ts'
import { parseDigest } from '../../shared/oci/index.ts'
import { ChunkClient, RemoteError } from '../../shared/swarm/protocol/index.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { type RunningSeeder, startSeeder } from '../../seeder/main.ts'
import { rendezvousScore, withPeerId } from '../../shared/swarm/index.ts'
import type { PreheatJobView } from '../../seeder/preheat.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'

let fleet: Fleet
/** A second seeder; each names the other in --bootstrap, so they split blobs by rendezvous. */
let second: RunningSeeder
let secondDir: string
beforeAll(async () => {
  // The second seeder's identity and port exist before the first seeder starts, so the first can name it.
  secondDir = await mkdtemp(join(tmpdir(), 'shoal-seeder-2-'))
  const secondId = peerIdFromPrivateKey(await loadOrCreateIdentity(secondDir)).toString()
  const secondPort = await freePort()
  fleet = await startFleet({
    agents: 2,
    layers: 5,
    layerBytes: 512 * 1024,
    seederArgs: ['--bootstrap', withPeerId(`/ip4/127.0.0.1/tcp/${secondPort}`, secondId)],
    // Agents trust both seeders and ask each blob of its rendezvous owner, as the seeders split them.
    agentArgs: ['--seeder', withPeerId(`/ip4/127.0.0.1/tcp/${secondPort}`, secondId)],
  })
  const first = fleet.seeder.multiaddrs.find((m) => m.includes('/tcp/'))!
  second = await startSeeder(
    loadSeederConfig({
      argv: [
        ...['--origin', fleet.origin.url, '--data', secondDir],
        ...[
          '--p2p-listen',
          `/ip4/127.0.0.1/tcp/${secondPort}`,
          '--api-listen',
          '127.0.0.1:0',
          '--chunk-size',
          '256KiB',
        ],
        ...['--bootstrap', withPeerId(first, fleet.seeder.peerId)],
      ],
      env: {},
      readFile: () => '',
    }),
    { log: createLogger({ level: 'silent' }) },
  )
}, 60_000)
afterAll(async () => {
  await second?.stop()
  await fleet?.stop()
  await rm(secondDir, { recursive: true, force: true })
})

async function waitJob(seeder: RunningSeeder, id: string): Promise<PreheatJobView> {
  for (;;) {
    const res = await fetch(`${seeder.apiUrl}/api/v1/preheat/${id}`)
    const job = (await res.json()) as PreheatJobView
    if (job.state === 'done' || job.state === 'failed') return job
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function statusBytes(url: string): Promise<Record<string, number>> {
  return ((await (await fetch(`${url}/status`)).json()) as { bytes: Record<string, number> }).bytes
}

describe('preheat across seeders and agents', () => {
  it('splits the origin pulls between seeders by rendezvous, each blob pulled once', async () => {
    const res = await fetch(`${second.apiUrl}/api/v1/preheat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'demo/app:v1' }),
    })
    expect(res.status).toBe(202)
    const job = await waitJob(second, ((await res.json()) as { id: string }).id)
    expect(job.state).toBe('done')
    for (const l of job.layers) {
      const firstOwns = rendezvousScore(fleet.seeder.peerId, l.digest) > rendezvousScore(second.peerId, l.digest)
      // The owner pulled it and holds it for its --preheat-ttl; the other seeder only watched it arrive there.
      expect(l.seeder, l.digest).toBe(firstOwns ? fleet.seeder.peerId : undefined)
      const holder = firstOwns ? fleet.seeder : second
      expect(holder.retention.held().some((h) => h.digest === l.digest)).toBe(true)
      expect(l.bytes).toBe(l.size)
      expect(fleet.origin.stats.perBlob.get(l.digest)?.requests, l.digest).toBe(1)
    }
  }, 60_000)

  it('asks N agents to prefetch: their first pull then costs nobody anything', async () => {
    const res = await fetch(`${fleet.seeder.apiUrl}/api/v1/preheat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'demo/app:v1', scope: { agents: 2 } }),
    })
    expect(res.status).toBe(202)
    const job = await waitJob(fleet.seeder, ((await res.json()) as { id: string }).id)
    expect(job.state).toBe('done')
    expect(job.scope).toEqual({ agents: 2 })
    // The second seeder is connected too and may be asked first: it refuses, and is replaced.
    expect(job.agents?.accepted).toBe(2)
    expect(job.agents?.complete).toBe(2)
    // The blobs the second seeder owns stayed there: still one origin pull per blob.
    for (const b of fleet.image.blobs) expect(fleet.origin.stats.perBlob.get(b.digest)?.requests).toBe(1)
    const served = fleet.origin.stats.blobBytesServed
    const total = fleet.image.blobs.reduce((n, b) => n + b.size, 0)
    for (const agent of fleet.agents) {
      const before = await statusBytes(agent.url)
      const got = Object.values(before).reduce((a, b) => a + b, 0)
      // Every blob arrived through the swarm (seeders and peers), none from the origin.
      expect(got).toBeGreaterThanOrEqual(total)
      expect(before['origin'] ?? 0).toBe(0)
      const pulled = await pullImage(agent.url, 'demo/app', 'v1')
      expect(pulled.blobBytes).toBe(total)
      // Served from the agent's cache: nothing more received from anyone.
      expect(await statusBytes(agent.url)).toEqual(before)
    }
    expect(fleet.origin.stats.blobBytesServed).toBe(served)
  }, 60_000)

  it('a seeder holds a blob only for a seeder it names; agents download only for seeders they trust', async () => {
    const host = new URL(fleet.origin.url).host
    const blob = fleet.image.blobs[0]!.digest
    const firstAddr = multiaddr(fleet.seeder.multiaddrs.find((m) => m.includes('/tcp/'))!)
    // Named by the first seeder, but asking without `hold`: that is a preheat looking for agents.
    const fromSecond = new ChunkClient({ node: second.node })
    await expect(fromSecond.prefetch(firstAddr, blob, host, 'demo/app')).rejects.toThrow(/not an agent/)
    // A stranger: a seeder will not hold content for it, and an agent will not download for it.
    const dir = await mkdtemp(join(tmpdir(), 'shoal-stranger-'))
    const stranger = await createP2PNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [] })
    try {
      const client = new ChunkClient({ node: stranger })
      await expect(client.prefetch(firstAddr, blob, host, 'demo/app', { hold: true })).rejects.toThrow(/--bootstrap/)
      const agent = fleet.agents[0]!
      const addr = agent.multiaddrs.find((m) => m.includes('/tcp/'))!
      const target = multiaddr(withPeerId(addr, agent.peerId!))
      const unknown = parseDigest(`sha256:${'1'.repeat(64)}`)
      await expect(client.prefetch(target, unknown, host, 'demo/app')).rejects.toThrow(RemoteError)
      await expect(client.prefetch(target, unknown, host, 'demo/app')).rejects.toThrow(/trusted seeder/)
      // A trusted seeder may ask an agent to hold a copy for its site (pinned for the agent's --preheat-ttl);
      // an agent started with --preheat-ttl 0 holds none.
      await expect(fromSecond.prefetch(target, unknown, host, 'demo/app', { hold: true })).resolves.toBeUndefined()
      const noHolds = await fleet.startAgent(fleet.agents.length + 1, ['--preheat-ttl', '0'])
      const noHoldsAddr = noHolds.multiaddrs.find((m) => m.includes('/tcp/'))!
      const noHoldsTarget = multiaddr(
        noHoldsAddr.includes('/p2p/') ? noHoldsAddr : `${noHoldsAddr}/p2p/${noHolds.peerId}`,
      )
      await expect(fromSecond.prefetch(noHoldsTarget, unknown, host, 'demo/app', { hold: true })).rejects.toThrow(
        /holds no content/,
      )
    } finally {
      await stranger.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
