import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { pullImage } from '../../shared/sample/pull.ts'
import { Bitfield, type ChunkAttestation, chunkCount } from '../../shared/chunks/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import type { SampleBlob } from '../../shared/sample/index.ts'
import { ChunkClient, type ChunkSource, type SourceHave } from '../../shared/swarm/protocol/index.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'
import {
  CHUNK,
  expectCachedIntact,
  fromFile,
  type Genuine,
  rejected,
  seederAddr,
  serveSource,
  startHostileNode,
} from './hostile-node.ts'

const cleanups: (() => Promise<void>)[] = []
let fleet: Fleet | undefined

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
  await fleet?.stop()
  fleet = undefined
})

/**
 * A peer that claims to hold every chunk of the image's blobs and answers every request with the right number of
 * bytes, one of them flipped. `genuine` says where the honest bytes come from: the blob files on disk, or a real
 * holder whose attestations it replays (so an agent without a map has a valid-looking proof in hand).
 */
class LyingSource implements ChunkSource {
  readonly #blobs: ReadonlyMap<Digest, SampleBlob>
  readonly #genuine: GenuineFn
  /** Corrupted chunks handed to the transport. */
  served = 0

  constructor(blobs: readonly SampleBlob[], genuine: GenuineFn) {
    this.#blobs = new Map(blobs.map((b) => [b.digest, b]))
    this.#genuine = genuine
  }

  async map(): Promise<undefined> {
    return undefined
  }

  have(digest: Digest): SourceHave | undefined {
    const b = this.#blobs.get(digest)
    if (b === undefined) return undefined
    return { size: b.size, chunkSize: CHUNK, bitfield: Bitfield.full(chunkCount(b.size, CHUNK)), complete: true }
  }

  async waitHave(): Promise<void> {}

  async readChunk(
    digest: Digest,
    index: number,
    ctx?: { signal: AbortSignal },
  ): Promise<{ bytes: Uint8Array; attestation?: ChunkAttestation } | undefined> {
    const b = this.#blobs.get(digest)
    if (b === undefined) return undefined
    const g = await this.#genuine(b, index, ctx?.signal ?? AbortSignal.timeout(30_000))
    const bytes = new Uint8Array(g.bytes)
    bytes[bytes.byteLength >> 1]! ^= 0xff
    this.served++
    return g.attestation === undefined ? { bytes } : { bytes, attestation: g.attestation }
  }
}

type GenuineFn = (blob: SampleBlob, index: number, signal: AbortSignal) => Promise<Genuine>

async function startHostile(f: Fleet, source: ChunkSource) {
  const hostile = await startHostileNode(f, serveSource(source))
  cleanups.push(hostile.stop)
  return hostile.node
}

describe('a hostile peer serving corrupted chunks', () => {
  it('is banned on its first bad chunk when the agent holds the signed map; the pull is intact', async () => {
    // The seeder is slow to upload, so the agent finds the hostile provider (which claims every chunk, and
    // is asked first: peers go before seeders) long before the seeder could have sent everything.
    fleet = await startFleet({
      agents: 1,
      layers: 2,
      layerBytes: 1024 * 1024,
      agentArgs: ['--stall-timeout', '60s'],
      seederArgs: ['--upload-rate', '1MiB'],
    })
    const f = fleet
    // Warm seeder: it holds every blob and has signed every map before the agent asks.
    const registry = new URL(f.origin.url).host
    for (const b of f.image.blobs) await f.seeder.puller.start(b.digest, registry, 'demo/app').done
    const lying = new LyingSource(f.image.blobs, fromFile)
    await startHostile(f, lying)

    const agent = f.agents[0]!
    const r = await pullImage(agent.url, 'demo/app', 'v1')
    expect(r.blobs).toBe(f.image.blobs.length)
    expect(lying.served).toBeGreaterThan(0)
    expect(await rejected(agent.metrics, 'hash')).toBeGreaterThan(0)
    // Each bad chunk was dropped and fetched again elsewhere: no blob had to be refetched from the origin.
    for (const b of f.image.blobs) expect(f.origin.stats.perBlob.get(b.digest)?.requests).toBe(1)
    expect((await agent.metrics.digestFailures.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0)
    await expectCachedIntact(agent, f.image.blobs)
  })

  it('is banned when it replays the seeder’s genuine attestations with corrupted bytes (cold blob, no map)', async () => {
    // A slow origin keeps the blobs cold (no signed map anywhere) while the agent pulls: only the seeder's
    // per-chunk attestations prove chunks, and the hostile peer carries real ones.
    fleet = await startFleet({
      agents: 1,
      layers: 2,
      layerBytes: 1024 * 1024,
      agentArgs: ['--stall-timeout', '60s'],
      seederArgs: ['--origin-rate', '1MiB'],
    })
    const f = fleet
    const seeder = seederAddr(f)
    const hostile: { client?: ChunkClient } = {}
    let whileCold = 0
    // Asks the seeder for the real chunk (with its attestation) until the seeder has it.
    const replay = async (blob: SampleBlob, index: number, signal: AbortSignal): Promise<Genuine> => {
      for (;;) {
        const res = await hostile.client!.getChunk(seeder, blob.digest, index, { signal })
        if (typeof res !== 'string') {
          // No map is signed before the seeder's pull ends: until then an agent has attestations only.
          if (f.seeder.puller.inflight.includes(blob.digest)) whileCold++
          return res
        }
        // The seeder is still pulling that chunk from the origin: a fake peer may poll.
        await sleep(50, undefined, { signal })
      }
    }
    const lying = new LyingSource(f.image.blobs, replay)
    const node = await startHostile(f, lying)
    hostile.client = new ChunkClient({ node })

    const agent = f.agents[0]!
    const r = await pullImage(agent.url, 'demo/app', 'v1')
    expect(r.blobs).toBe(f.image.blobs.length)
    expect(whileCold).toBeGreaterThan(0)
    expect(await rejected(agent.metrics, 'hash')).toBeGreaterThan(0)
    for (const b of f.image.blobs) expect(f.origin.stats.perBlob.get(b.digest)?.requests).toBe(1)
    await expectCachedIntact(agent, f.image.blobs)
  })
})
