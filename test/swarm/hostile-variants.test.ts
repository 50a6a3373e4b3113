/**
 * Every way a peer can lie to an agent, each played by a real libp2p node that claims to hold every chunk of the
 * image (a lying bitfield to begin with) and is found through the DHT. Whatever it does, the client must get the
 * right bytes, nothing corrupt may reach the cache, the liar must be banned (or, when it is only slow or silent,
 * have its requests moved to others), and the pull must complete from the seeder without the agent going to the
 * origin. The seeder is throttled so the hostile peer, which peers go to before seeders, is asked first.
 */
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { pullImage } from '../../shared/sample/pull.ts'
import type { RunningAgent } from '../../agent/main.ts'
import {
  chunkCount,
  chunkDigestOf,
  chunkRange,
  type SignedChunkMap,
  signChunkAttestation,
  signChunkMap,
} from '../../shared/chunks/index.ts'
import { Digester } from '../../shared/oci/index.ts'
import type { SampleBlob } from '../../shared/sample/index.ts'
import { ChunkClient, type Response, encodeResponse } from '../../shared/swarm/protocol/index.ts'
import { encodeVarint } from '../../shared/swarm/protocol/framing.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'
import {
  CHUNK,
  digestFailures,
  expectCachedIntact,
  fromFile,
  type HostileNode,
  type RawChunkAnswer,
  type RawExchange,
  rejected,
  seederAddr,
  serveRaw,
  startHostileNode,
} from './hostile-node.ts'

const cleanups: (() => Promise<void>)[] = []
let fleet: Fleet | undefined

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
  await fleet?.stop()
  fleet = undefined
})

/** Requests an agent keeps in flight to a peer whose rate it does not know yet (the scheduler's default). */
const PIPELINE = 4
/**
 * A pull held up by a silent, trickling or always-busy peer must still finish inside this (about 13 s on an idle
 * machine). Without re-assignment it stalls until the stall timeout sends it to the origin, which pullAndCheck
 * refuses on its own.
 */
const BOUND_MS = 40_000

interface Setup {
  /** The seeder holds every blob and its signed map before the agent asks (else: cold, attestations only). */
  readonly warm: boolean
  /** Agents started with the fleet (default 1). */
  readonly agents?: number
  readonly agentArgs?: string[]
}

async function setUp(s: Setup): Promise<Fleet> {
  fleet = await startFleet({
    agents: s.agents ?? 1,
    layers: 2,
    // 8 chunks a layer: a peer asked for more than one pipeline's worth of a blob was not banned at once.
    layerBytes: 2 * 1024 * 1024,
    agentArgs: ['--stall-timeout', '60s', ...(s.agentArgs ?? [])],
    seederArgs: s.warm ? ['--upload-rate', '2MiB'] : ['--origin-rate', '2MiB'],
  })
  if (s.warm) {
    const registry = new URL(fleet.origin.url).host
    for (const b of fleet.image.blobs) await fleet.seeder.puller.start(b.digest, registry, 'demo/app').done
  }
  return fleet
}

async function hostile(f: Fleet, answer: RawChunkAnswer): Promise<HostileNode> {
  const h = await startHostileNode(f, serveRaw(f.image.blobs, answer))
  cleanups.push(h.stop)
  return h
}

async function originBlobFetches(agent: RunningAgent): Promise<number> {
  const v = (await agent.metrics.originFetches.get()).values.find((x) => x.labels['kind'] === 'blob')
  return v?.value ?? 0
}

/** The blob the agent is asked for first, alone: the largest layer (most chunks to lie about). */
function firstBlob(f: Fleet): SampleBlob {
  return [...f.image.blobs].sort((a, b) => b.size - a.size)[0]!
}

async function getBlob(agent: RunningAgent, blob: SampleBlob): Promise<void> {
  const res = await request(`${agent.url}/v2/demo/app/blobs/${blob.digest}`)
  expect(res.statusCode).toBe(200)
  const d = Digester.for(blob.digest)
  for await (const part of res.body) d.update(part as Uint8Array)
  expect(d.digest()).toBe(blob.digest)
}

/**
 * Gets the largest layer through the agent alone, then pulls the whole image, and checks everything the guarantee
 * promises whoever lied how. Returns how long that took.
 */
async function pullAndCheck(f: Fleet, h: HostileNode, opts: { listedSeeder?: boolean } = {}): Promise<number> {
  const agent = f.agents[0]!
  const t0 = performance.now()
  await getBlob(agent, firstBlob(f))
  // The hostile peer was found and asked, so whatever follows is its doing.
  expect(h.chunkRequests.get(firstBlob(f).digest) ?? 0).toBeGreaterThan(0)
  const r = await pullImage(agent.url, 'demo/app', 'v1')
  const ms = performance.now() - t0
  expect(r.blobs).toBe(f.image.blobs.length)
  // Completed from the seeder: the origin sent each blob once (to the seeder), the agent never went there.
  for (const b of f.image.blobs) expect(f.origin.stats.perBlob.get(b.digest)?.requests).toBe(1)
  expect(await originBlobFetches(agent)).toBe(0)
  expect(await digestFailures(agent.metrics)).toBe(0)
  // Maps come from listed seeders only: a mere peer never gets the chance to offer a forged one.
  if (opts.listedSeeder !== true) expect(h.requests.get('map') ?? 0).toBe(0)
  await expectCachedIntact(agent, f.image.blobs)
  return ms
}

/**
 * Banned on its first lie: asked for no more of the first blob than the requests already in flight then, and for
 * nothing at all of the blobs pulled after it (the ban holds across downloads).
 */
function expectBanned(f: Fleet, h: HostileNode): void {
  const first = firstBlob(f).digest
  expect(h.chunkRequests.get(first) ?? 0).toBeLessThanOrEqual(PIPELINE)
  for (const b of f.image.blobs) if (b.digest !== first) expect(h.chunkRequests.get(b.digest) ?? 0).toBe(0)
}

/** Not proven a liar (it may have crashed or be overloaded), but its chunks went to others after a few tries. */
function expectReassigned(f: Fleet, h: HostileNode): void {
  for (const b of f.image.blobs) expect(h.chunkRequests.get(b.digest) ?? 0).toBeLessThanOrEqual(PIPELINE)
}

async function respond(x: RawExchange, res: Response): Promise<void> {
  await x.frames.write([encodeResponse(res)], { signal: x.signal })
}

/** The bytes at the same offsets in another layer of the image: a genuine chunk, of the wrong blob. */
async function otherBlobBytes(f: Fleet, blob: SampleBlob, index: number): Promise<Uint8Array> {
  const other = f.image.blobs.filter((b) => b.digest !== blob.digest).sort((a, b) => b.size - a.size)[0]!
  const { start, end } = chunkRange({ size: blob.size, chunkSize: CHUNK }, index)
  const whole = await fromFile(other, Math.floor(start / CHUNK))
  return whole.bytes.subarray(0, end - start)
}

const untilAborted = (signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))

describe('hostile peers that lie about content (warm: the agent holds the signed map)', () => {
  it('a truncated chunk (fewer bytes, announced as such) is refused and its sender banned', async () => {
    const f = await setUp({ warm: true })
    const h = await hostile(f, async (req, x) => {
      const { bytes } = await fromFile(x.blob, req.index)
      const short = bytes.subarray(0, bytes.byteLength - 1000)
      await respond(x, { t: 'chunk', index: req.index, length: short.byteLength })
      await x.frames.writeData(short, { signal: x.signal })
    })
    await pullAndCheck(f, h)
    expect(await rejected(f.agents[0]!.metrics, 'hash')).toBeGreaterThan(0)
    expectBanned(f, h)
  })

  it('a chunk of another blob, with the right length, is refused and its sender banned', async () => {
    const f = await setUp({ warm: true })
    const h = await hostile(f, async (req, x) => {
      const bytes = await otherBlobBytes(f, x.blob, req.index)
      await respond(x, { t: 'chunk', index: req.index, length: bytes.byteLength })
      await x.frames.writeData(bytes, { signal: x.signal })
    })
    await pullAndCheck(f, h)
    expect(await rejected(f.agents[0]!.metrics, 'hash')).toBeGreaterThan(0)
    expectBanned(f, h)
  })

  it('a chunk cut off mid-transfer is a clean failure, re-asked elsewhere', async () => {
    const f = await setUp({ warm: true })
    const h = await hostile(f, async (req, x) => {
      const { bytes } = await fromFile(x.blob, req.index)
      await respond(x, { t: 'chunk', index: req.index, length: bytes.byteLength })
      x.stream.send(encodeVarint(bytes.byteLength))
      x.stream.send(bytes.subarray(0, bytes.byteLength >> 1))
      x.stream.abort(new Error('hung up mid-chunk'))
    })
    await pullAndCheck(f, h)
    expectReassigned(f, h)
  })

  it('oversized messages (a chunk over its length, a control frame over 64 KiB) are refused unread; banned', async () => {
    const f = await setUp({ warm: true })
    let n = 0
    const h = await hostile(f, async (req, x) => {
      if (n++ % 2 === 0) {
        // 8 MiB announced for a 256 KiB chunk, then bytes to back it: refused on the header, nothing buffered.
        await respond(x, { t: 'chunk', index: req.index, length: 8 * 1024 * 1024 })
        x.stream.send(encodeVarint(8 * 1024 * 1024))
        x.stream.send(new Uint8Array(1024 * 1024))
      } else {
        x.stream.send(encodeVarint(1024 * 1024))
        x.stream.send(new Uint8Array(256 * 1024).fill(0x7b))
      }
      await untilAborted(x.signal)
    })
    await pullAndCheck(f, h)
    expectBanned(f, h)
  })
})

describe('hostile peers that forge proofs (cold: the agent has only the seeder’s per-chunk attestations)', () => {
  it('forged bytes with an attestation signed by an untrusted key are never written; the peer is banned', async () => {
    const f = await setUp({ warm: false })
    const key = await generateKeyPair('Ed25519')
    const h = await hostile(f, async (req, x) => {
      const { bytes } = await fromFile(x.blob, req.index)
      const forged = new Uint8Array(bytes)
      forged[0]! ^= 0xff
      // A self-consistent lie: the attestation names exactly the forged bytes, only the signer is wrong.
      const attestation = await signChunkAttestation(
        { digest: x.blob.digest, size: x.blob.size, chunkSize: CHUNK, index: req.index, chunk: chunkDigestOf(forged) },
        key,
      )
      await respond(x, { t: 'chunk', index: req.index, length: forged.byteLength, attestation })
      await x.frames.writeData(forged, { signal: x.signal })
    })
    await pullAndCheck(f, h)
    expect(await rejected(f.agents[0]!.metrics, 'forged')).toBeGreaterThan(0)
    expectBanned(f, h)
  })

  it('a genuine seeder attestation of another blob, with that blob’s bytes, is refused; the peer is banned', async () => {
    const f = await setUp({ warm: false })
    const client: { c?: ChunkClient } = {}
    const seeder = seederAddr(f)
    const other = f.image.blobs.find((b) => b.digest !== firstBlob(f).digest && b.size === firstBlob(f).size)!
    // The seeder pulls the other layer meanwhile, so its genuine attestations exist to be replayed.
    void f.seeder.puller.start(other.digest, new URL(f.origin.url).host, 'demo/app').done.catch(() => {})
    const h = await hostile(f, async (req, x) => {
      // What the seeder really signed for the other blob (polling while it is still pulling it).
      for (;;) {
        const res = await client.c!.getChunk(seeder, other.digest, req.index, { signal: x.signal })
        if (typeof res !== 'string') {
          await respond(x, {
            t: 'chunk',
            index: req.index,
            length: res.bytes.byteLength,
            attestation: res.attestation!,
          })
          await x.frames.writeData(res.bytes, { signal: x.signal })
          return
        }
        await sleep(50, undefined, { signal: x.signal })
      }
    })
    client.c = new ChunkClient({ node: h.node })
    await pullAndCheck(f, h)
    expectBanned(f, h)
  })
})

describe('hostile peers that claim chunks and then do not deliver them', () => {
  it('answers none to every chunk it claimed: re-asked elsewhere, pull completes', async () => {
    const f = await setUp({ warm: true })
    const h = await hostile(f, async (_req, x) => respond(x, { t: 'none' }))
    await pullAndCheck(f, h)
    expectReassigned(f, h)
  })

  it('answers busy forever: its chunks go to others, the pull completes without the origin', async () => {
    const f = await setUp({ warm: true })
    const h = await hostile(f, async (_req, x) => respond(x, { t: 'busy' }))
    const ms = await pullAndCheck(f, h)
    expect(ms).toBeLessThan(BOUND_MS)
    // Patience with a busy peer is bounded: a few rounds of busy answers per blob, not one every 250 ms forever.
    for (const b of f.image.blobs) expect(h.chunkRequests.get(b.digest) ?? 0).toBeLessThanOrEqual(4 * PIPELINE)
  })

  it('never answers: detected as late, its requests re-assigned, the pull completes within a bound', async () => {
    const f = await setUp({ warm: true, agentArgs: ['--stall-timeout', '8s'] })
    const h = await hostile(f, async (_req, x) => untilAborted(x.signal))
    const ms = await pullAndCheck(f, h)
    expect(ms).toBeLessThan(BOUND_MS)
  })

  it('trickles endless slow bytes: detected as slow, re-assigned, the pull completes within a bound', async () => {
    const f = await setUp({ warm: true, agentArgs: ['--stall-timeout', '8s'] })
    let trickled = 0
    const h = await hostile(f, async (req, x) => {
      const { bytes } = await fromFile(x.blob, req.index)
      await respond(x, { t: 'chunk', index: req.index, length: bytes.byteLength })
      x.stream.send(encodeVarint(bytes.byteLength))
      // Genuine bytes, 64 a tick: always something arriving, never a whole chunk.
      for (let off = 0; off < bytes.byteLength && !x.signal.aborted; off += 64) {
        x.stream.send(bytes.subarray(off, off + 64))
        trickled += 64
        await sleep(20, undefined, { signal: x.signal }).catch(() => {})
      }
    })
    const ms = await pullAndCheck(f, h)
    expect(trickled).toBeGreaterThan(0)
    expect(ms).toBeLessThan(BOUND_MS)
  })
})

describe('chunk maps are accepted on a trusted signature, not on who hands them over', () => {
  it('a listed seeder relaying a map signed by an untrusted key: the map is refused, the pull is intact', async () => {
    const f = await setUp({ warm: true, agents: 0 })
    const first = firstBlob(f)
    // The rogue must be the seeder the agent asks first for this blob's map (rendezvous order), or it is never asked.
    let key = await generateKeyPair('Ed25519')
    while (rank(peerIdFromPrivateKey(key).toString(), first) < rank(f.seeder.peerId, first)) {
      key = await generateKeyPair('Ed25519')
    }
    const forger = await generateKeyPair('Ed25519')
    const forgedChunk = async (blob: SampleBlob, index: number): Promise<Uint8Array> => {
      const bytes = new Uint8Array((await fromFile(blob, index)).bytes)
      bytes[0]! ^= 0xff
      return bytes
    }
    const h = await hostileSeeder(f, key, {
      chunk: async (req, x) => {
        const bytes = await forgedChunk(x.blob, req.index)
        await respond(x, { t: 'chunk', index: req.index, length: bytes.byteLength })
        await x.frames.writeData(bytes, { signal: x.signal })
      },
      // Self-consistent: the map lists exactly the forged chunks. Only its signer is not one the agent trusts.
      map: async (blob) => {
        const n = chunkCount(blob.size, CHUNK)
        const chunks = await Promise.all(
          Array.from({ length: n }, async (_, i) => chunkDigestOf(await forgedChunk(blob, i))),
        )
        return await signChunkMap({ digest: blob.digest, size: blob.size, chunkSize: CHUNK, chunks }, forger)
      },
    })
    await pullAndCheck(f, h, { listedSeeder: true })
    expect(h.requests.get('map') ?? 0).toBeGreaterThan(0)
  })
})

/** The order in which an agent asks seeders for a blob's map: highest first (see agent/swarm rendezvous). */
function rank(id: string, blob: SampleBlob): number {
  return createHash('sha256').update(id).update('\n').update(blob.digest).digest().readUInt32BE(0)
}

/** A raw node with identity `key`, listed as a second seeder of a fresh agent (agent 0 of the fleet). */
async function hostileSeeder(
  f: Fleet,
  key: PrivateKey,
  serve: { chunk: RawChunkAnswer; map: (blob: SampleBlob) => Promise<SignedChunkMap> },
): Promise<HostileNode> {
  const h = await startHostileNode(f, serveRaw(f.image.blobs, serve.chunk, serve.map), { key })
  cleanups.push(h.stop)
  const addr = h.node.getMultiaddrs().find((m) => m.toString().includes('/tcp/'))!
  f.agents.push(await f.startAgent(0, ['--seeder', addr.toString()]))
  return h
}
