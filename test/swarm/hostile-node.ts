/**
 * Hostile peers for swarm tests: real libp2p nodes in the fleet's DHT, announced as providers of the image's
 * blobs. One serves a ChunkSource through the real ChunkServer (it lies only about content); the other answers
 * `/shoal/chunks/1.0.0` raw, so it can break the protocol in ways the real server never would.
 */
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { request } from 'undici'
import { expect, vi } from 'vitest'
import type { RunningAgent } from '../../agent/main.ts'
import {
  Bitfield,
  type ChunkAttestation,
  chunkCount,
  chunkRange,
  encodeSignedChunkMap,
  type SignedChunkMap,
} from '../../shared/chunks/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import { type Digest, Digester } from '../../shared/oci/index.ts'
import { blobCid, createP2PNode, DHT_PROTOCOL, type P2PNode } from '../../shared/p2p/index.ts'
import { identityPath } from '../../shared/p2p/identity.ts'
import type { SampleBlob } from '../../shared/sample/index.ts'
import {
  CHUNK_PROTOCOL,
  ChunkServer,
  type ChunkSource,
  decodeRequest,
  encodeResponse,
  MAX_CONTROL_FRAME_BYTES,
  type Request,
  type Response,
} from '../../shared/swarm/protocol/index.ts'
import { FrameStream } from '../../shared/swarm/protocol/framing.ts'
import type { Fleet } from '../../harness/fleet.ts'
import { withPeerId } from '../../shared/swarm/index.ts'

/** Chunk size the fleets of the hostile tests are cut with (the fleet harness default). */
export const CHUNK = 256 * 1024

export interface Genuine {
  readonly bytes: Uint8Array
  readonly attestation?: ChunkAttestation
}

/** The honest bytes of chunk `index` of `blob`, read from the sample image's file. */
export async function fromFile(blob: SampleBlob, index: number): Promise<Genuine> {
  const { start, end } = chunkRange({ size: blob.size, chunkSize: CHUNK }, index)
  const bytes = new Uint8Array(end - start)
  const fh = await open(blob.path)
  try {
    await fh.read(bytes, 0, bytes.byteLength, start)
  } finally {
    await fh.close()
  }
  return { bytes }
}

export interface HostileNode {
  readonly node: P2PNode
  /** Requests received, by type (`chunk`, `have`, `map`, `fetch`). */
  readonly requests: Map<string, number>
  /** Chunk requests received per blob. */
  readonly chunkRequests: Map<Digest, number>
}

type Serve = (node: P2PNode, count: (req: Request) => void) => Promise<() => Promise<void>>

/** Serves `source` through the real ChunkServer. */
export function serveSource(source: ChunkSource): Serve {
  return async (node, count) => {
    const counting: ChunkSource = {
      map: (d, ctx) => (count({ t: 'map', digest: d }), source.map(d, ctx)),
      have: (d, ctx) => source.have(d, ctx),
      waitHave: (d, k, s, ctx) => source.waitHave(d, k, s, ctx),
      readChunk: (d, i, ctx) => (count({ t: 'chunk', digest: d, index: i }), source.readChunk(d, i, ctx)),
    }
    const server = new ChunkServer({ registrar: node }, { source: counting, maxConcurrentUploads: 16 })
    await server.start()
    return () => server.stop()
  }
}

export interface RawExchange {
  readonly frames: FrameStream
  readonly stream: Stream
  /** Aborts when the asking side goes away (or the node stops). */
  readonly signal: AbortSignal
  readonly blob: SampleBlob
}

/** What a raw hostile node answers to a chunk request; `have` claims every chunk (a lie where it serves none). */
export type RawChunkAnswer = (req: Extract<Request, { t: 'chunk' }>, x: RawExchange) => Promise<void>

/**
 * Answers `have` with every chunk held, chunk requests with `answer` (written raw), `map` with what `map` gives
 * (none by default), anything else with none.
 */
export function serveRaw(
  blobs: readonly SampleBlob[],
  answer: RawChunkAnswer,
  map: (blob: SampleBlob) => Promise<SignedChunkMap | undefined> = async () => undefined,
): Serve {
  const byDigest = new Map(blobs.map((b) => [b.digest, b]))
  return async (node, count) => {
    const stopping = new AbortController()
    await node.handle(
      CHUNK_PROTOCOL,
      async (stream) => {
        const closed = new AbortController()
        stream.addEventListener('close', () => closed.abort(), { once: true })
        const signal = AbortSignal.any([closed.signal, stopping.signal])
        try {
          const frames = new FrameStream(stream, { maxBufferBytes: 2 * MAX_CONTROL_FRAME_BYTES })
          const req = decodeRequest(await frames.read(MAX_CONTROL_FRAME_BYTES, { signal }))
          count(req)
          const blob = byDigest.get(req.digest)
          let signed: SignedChunkMap | undefined
          if (blob !== undefined && req.t === 'chunk') {
            await answer(req, { frames, stream, signal, blob })
          } else if (blob !== undefined && req.t === 'have') {
            await frames.write([encodeResponse(fullHave(blob))], { signal })
          } else if (blob !== undefined && req.t === 'map' && (signed = await map(blob)) !== undefined) {
            const bytes = encodeSignedChunkMap(signed)
            await frames.write([encodeResponse({ t: 'map', length: bytes.byteLength })], { signal })
            await frames.writeData(bytes, { signal })
          } else {
            // Maps, fetches, bulk tickets and whatever else: this peer has none to give.
            await frames.write([encodeResponse({ t: 'none' })], { signal })
          }
          await stream.close({ signal })
        } catch (err) {
          stream.abort(err instanceof Error ? err : new Error(String(err)))
        }
      },
      { maxInboundStreams: 256 },
    )
    return async () => {
      stopping.abort()
      await node.unhandle(CHUNK_PROTOCOL)
    }
  }
}

export function fullHave(blob: SampleBlob): Response {
  const n = chunkCount(blob.size, CHUNK)
  return { t: 'have', size: blob.size, chunkSize: CHUNK, bitfield: Bitfield.full(n), complete: true }
}

/**
 * A real libp2p node in the fleet's DHT serving what `serve` registers, announced as a provider of every blob of
 * the image. Stopped by the returned stop function (tests push it onto their cleanups).
 */
export async function startHostileNode(
  f: Fleet,
  serve: Serve,
  opts: { key?: PrivateKey } = {},
): Promise<HostileNode & { stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-hostile-'))
  if (opts.key !== undefined) {
    // A chosen identity: written where the node factory looks for it.
    await mkdir(dirname(identityPath(dir)), { recursive: true })
    await writeFile(identityPath(dir), privateKeyToProtobuf(opts.key), { mode: 0o600 })
  }
  const node = await createP2PNode({
    dataDir: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [seederAddr(f).toString()],
  })
  const requests = new Map<string, number>()
  const chunkRequests = new Map<Digest, number>()
  const stopServing = await serve(node, (req) => {
    requests.set(req.t, (requests.get(req.t) ?? 0) + 1)
    if (req.t === 'chunk') chunkRequests.set(req.digest, (chunkRequests.get(req.digest) ?? 0) + 1)
  })
  const stop = async (): Promise<void> => {
    await stopServing().catch(() => {})
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    // The provider record must land before the agents look: wait until the DHT knows the seeder, then provide.
    await untilDhtPeer(node, peerIdFromString(f.seeder.peerId))
    for (const b of f.image.blobs)
      await node.contentRouting.provide(blobCid(b.digest), { signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    await stop()
    throw err
  }
  return { node, requests, chunkRequests, stop }
}

export function seederAddr(f: Fleet): Multiaddr {
  const tcp = f.seeder.multiaddrs.find((m) => m.includes('/tcp/'))!
  return multiaddr(withPeerId(tcp, f.seeder.peerId))
}

/**
 * Resolves once `node` has identified `peer` as a Shoal DHT peer, the point from which kad-dht can use it; throws
 * after `timeoutMs` (an identify that failed is never announced again, and a test must fail, not hang).
 */
export async function untilDhtPeer(node: P2PNode, peer: PeerId, timeoutMs = 30_000): Promise<void> {
  const knows = (): Promise<boolean> =>
    node.peerStore.get(peer).then(
      (p) => p.protocols.includes(DHT_PROTOCOL),
      () => false,
    )
  const deadline = Date.now() + timeoutMs
  let wake: (() => void) | undefined
  const listener = (evt: CustomEvent<{ peerId: PeerId }>): void => {
    if (evt.detail.peerId.equals(peer)) wake?.()
  }
  node.addEventListener('peer:identify', listener)
  try {
    while (!(await knows())) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${peer.toString()} not identified as a DHT peer within ${timeoutMs} ms`)
      // The event, or a look at the store every 250 ms: either may come first.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(250, left))
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  } finally {
    node.removeEventListener('peer:identify', listener)
  }
}

export async function rejected(metrics: Metrics, reason: string): Promise<number> {
  const v = (await metrics.chunksRejected.get()).values.find((x) => x.labels['reason'] === reason)
  return v?.value ?? 0
}

export async function digestFailures(metrics: Metrics): Promise<number> {
  return (await metrics.digestFailures.get()).values.reduce((n, v) => n + v.value, 0)
}

/**
 * Each blob read back from the agent, from its cache, and hashed here. A streamed download may still be
 * committing when the client has its last byte, so a read that is not yet a cache hit is tried again.
 */
export async function expectCachedIntact(agent: RunningAgent, blobs: readonly SampleBlob[]): Promise<void> {
  const hits = async () =>
    (await agent.metrics.cacheLookups.get()).values.find(
      (v) => v.labels['kind'] === 'blob' && v.labels['result'] === 'hit',
    )?.value ?? 0
  for (const b of blobs) {
    await vi.waitFor(
      async () => {
        const before = await hits()
        const res = await request(`${agent.url}/v2/demo/app/blobs/${b.digest}`)
        expect(res.statusCode).toBe(200)
        const d = Digester.for(b.digest)
        for await (const part of res.body) d.update(part as Uint8Array)
        expect(d.digest()).toBe(b.digest)
        expect((await hits()) - before).toBe(1)
      },
      { timeout: 5_000, interval: 50 },
    )
  }
}
