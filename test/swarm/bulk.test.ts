/**
 * The bulk data path in a real swarm (demo origin, seeder, agents, all on 127.0.0.1): by default agents fetch
 * chunk bytes over HTTPS with tickets from the chunk protocol; with --no-bulk they use libp2p streams only.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { pullImage } from '../../shared/sample/pull.ts'
import { Bitfield, chunkCount } from '../../shared/chunks/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { createBulkCredentials } from '../../shared/swarm/bulk/index.ts'
import { ChunkServer, type ChunkSource } from '../../shared/swarm/protocol/index.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'
import { CHUNK, expectCachedIntact, fromFile, rejected, startHostileNode } from './hostile-node.ts'

const cleanups: (() => Promise<void>)[] = []
let fleet: Fleet | undefined
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
  await fleet?.stop()
  fleet = undefined
})

interface AgentStatus {
  readonly bulkPort?: number
  readonly chunks?: { readonly bulk: number; readonly stream: number; readonly fallbacks: number }
}

async function status(url: string): Promise<AgentStatus> {
  const res = await request(`${url}/status`)
  return (await res.body.json()) as AgentStatus
}

async function served(metrics: Metrics): Promise<number> {
  return (await metrics.bytesServed.get()).values.reduce((n, v) => n + v.value, 0)
}

async function received(metrics: Metrics): Promise<number> {
  const values = (await metrics.bytesReceived.get()).values
  return values.filter((v) => v.labels['source'] !== 'origin').reduce((n, v) => n + v.value, 0)
}

/** Agent 0 pulls first (from the seeder), then agent 1 (from agent 0 and the seeder): digests checked by pullImage. */
async function pullOneAfterTheOther(f: Fleet): Promise<void> {
  const imageBytes = f.image.blobs.reduce((n, b) => n + b.size, 0)
  for (const a of f.agents) expect((await pullImage(a.url, 'demo/app', 'v1')).blobBytes).toBe(imageBytes)
  for (const b of f.image.blobs) expect(f.origin.stats.perBlob.get(b.digest)?.requests ?? 0).toBe(1)
}

describe('the bulk data path in a swarm', () => {
  it('carries the chunk bytes by default, counted by the same peer-traffic metrics', async () => {
    fleet = await startFleet({ agents: 2, layers: 2, layerBytes: 1024 * 1024, agentArgs: ['--stall-timeout', '60s'] })
    const f = fleet
    await pullOneAfterTheOther(f)
    let receivedFromSwarm = 0
    for (const a of f.agents) {
      const s = await status(a.url)
      expect(s.bulkPort).toBeGreaterThan(0)
      expect(s.chunks?.bulk).toBeGreaterThan(0)
      expect(s.chunks).toMatchObject({ stream: 0, fallbacks: 0 })
      receivedFromSwarm += await received(a.metrics)
    }
    // Every byte an agent took from the swarm was counted as served by whoever sent it (endgame copies on top).
    const servedToPeers = (await served(f.seeder.metrics)) + (await served(f.agents[0]!.metrics))
    expect(receivedFromSwarm).toBeGreaterThan(0)
    expect(servedToPeers).toBeGreaterThanOrEqual(receivedFromSwarm)
  }, 120_000)

  it('is off with --no-bulk: no port, every chunk over libp2p streams', async () => {
    fleet = await startFleet({
      agents: 2,
      layers: 2,
      layerBytes: 1024 * 1024,
      agentArgs: ['--stall-timeout', '60s', '--no-bulk'],
      seederArgs: ['--no-bulk'],
    })
    const f = fleet
    await pullOneAfterTheOther(f)
    for (const a of f.agents) {
      const s = await status(a.url)
      expect(s.bulkPort).toBeUndefined()
      expect(s.chunks).toMatchObject({ bulk: 0, fallbacks: 0 })
      expect(s.chunks?.stream).toBeGreaterThan(0)
    }
  }, 120_000)

  it('does not weaken integrity: corrupted chunks sent over it fail their hash, and the sender is banned', async () => {
    // As in hostile-peer.test.ts: a slow seeder, so the agent asks the hostile provider (peers go first).
    fleet = await startFleet({
      agents: 1,
      layers: 2,
      layerBytes: 1024 * 1024,
      agentArgs: ['--stall-timeout', '60s'],
      seederArgs: ['--upload-rate', '1MiB'],
    })
    const f = fleet
    const registry = new URL(f.origin.url).host
    for (const b of f.image.blobs) await f.seeder.puller.start(b.digest, registry, 'demo/app').done
    const blobs = new Map(f.image.blobs.map((b) => [b.digest, b]))
    let corrupted = 0
    // Claims every chunk and serves each with one byte flipped, through the real server and its bulk path.
    const lying: ChunkSource = {
      map: async () => undefined,
      have: (d: Digest) => {
        const b = blobs.get(d)
        if (b === undefined) return undefined
        return { size: b.size, chunkSize: CHUNK, bitfield: Bitfield.full(chunkCount(b.size, CHUNK)), complete: true }
      },
      waitHave: async () => {},
      readChunk: async (d: Digest, index: number) => {
        const b = blobs.get(d)
        if (b === undefined) return undefined
        const bytes = new Uint8Array((await fromFile(b, index)).bytes)
        bytes[bytes.byteLength >> 1]! ^= 0xff
        corrupted++
        return { bytes }
      },
    }
    const key = await generateKeyPair('Ed25519')
    const credentials = await createBulkCredentials(key)
    const hostile = await startHostileNode(
      f,
      async (node) => {
        const server = new ChunkServer(
          { registrar: node },
          { source: lying, maxConcurrentUploads: 16, bulk: { credentials, listen: { host: '127.0.0.1', port: 0 } } },
        )
        await server.start()
        return () => server.stop()
      },
      { key },
    )
    cleanups.push(hostile.stop)
    const agent = f.agents[0]!
    const r = await pullImage(agent.url, 'demo/app', 'v1')
    expect(r.blobs).toBe(f.image.blobs.length)
    expect(corrupted).toBeGreaterThan(0)
    expect(await rejected(agent.metrics, 'hash')).toBeGreaterThan(0)
    // Nothing came over a libp2p stream: the corrupted chunks travelled the bulk path.
    expect((await status(agent.url)).chunks).toMatchObject({ stream: 0, fallbacks: 0 })
    for (const b of f.image.blobs) expect(f.origin.stats.perBlob.get(b.digest)?.requests).toBe(1)
    await expectCachedIntact(agent, f.image.blobs)
  }, 120_000)
})
