/**
 * The chunk protocol between real libp2p nodes (TCP on 127.0.0.1, TLS, yamux), an in-memory ChunkSource
 * behind the server: round trips, long polls, limits, timeouts. Hostile peers: hostile-peers.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { signChunkMap } from '../../../../shared/chunks/signed-map.ts'
import { type Digest, digestOf } from '../../../../shared/oci/digest.ts'
import { TokenBucket } from '../../../../shared/rate/token-bucket.ts'
import {
  ChunkClient,
  PeerTimeoutError,
  ProtocolError,
  RemoteError,
  InvalidMessageError,
} from '../../../../shared/swarm/protocol/index.ts'
import { addrOf, gate, KIB, MemorySource, makeBlob, MIB } from './helpers.ts'
import { useSwarm } from './swarm-fixture.ts'

const S = useSwarm()

describe('map', () => {
  it('returns the signed map, byte for byte', async () => {
    const signed = await S.client.getMap(S.seeder.peerId, S.blob.digest)
    expect(signed).toEqual(S.blob.signed)
  })

  it('returns undefined when the peer has no map', async () => {
    expect(await S.client.getMap(S.agentA.peerId, S.blob.digest)).toBeUndefined()
    expect(await S.client.getMap(S.seeder.peerId, `sha256:${'0'.repeat(64)}` as Digest)).toBeUndefined()
  })

  it('moves a map bigger than a control frame (3000 chunks) and dials a multiaddr', async () => {
    const chunks = Array.from({ length: 3000 }, (_, i) => digestOf(Uint8Array.of(i >> 8, i & 0xff)))
    const digest = digestOf(new TextEncoder().encode('a big layer'))
    const big = await signChunkMap({ digest, size: 3000 * 64 * KIB, chunkSize: 64 * KIB, chunks }, S.key)
    S.seederSource.addMap(big)
    const signed = await S.client.getMap(addrOf(S.seeder), digest)
    expect(signed?.map.chunks).toHaveLength(3000)
    expect(signed).toEqual(big)
  })

  it('tells the source which peer asked', async () => {
    S.seederSource.contexts.length = 0
    await S.client.getMap(S.seeder.peerId, S.blob.digest)
    expect(S.seederSource.contexts[0]?.peer.equals(S.agentB.peerId)).toBe(true)
  })
})

describe('have', () => {
  it('returns the bitfield and geometry', async () => {
    const have = await S.client.getHave(S.agentA.peerId, S.blob.digest)
    expect(have).toMatchObject({ size: S.blob.bytes.byteLength, chunkSize: 256 * KIB, complete: false })
    expect([...have!.bitfield.indexes()]).toEqual([1, 3])
    const full = await S.client.getHave(S.seeder.peerId, S.blob.digest)
    expect(full?.complete).toBe(true)
    expect(full?.bitfield.count).toBe(5)
  })

  it('carries sites both ways (format 1.1): in the answer the answering node, to the source the asker', async () => {
    const source = new MemorySource()
    source.add(S.blob, { held: [0] })
    const { node } = await S.freshServer({ source, site: 'store-17' })
    const have = await S.client.getHave(node.peerId, S.blob.digest, { site: 'store-9' })
    expect(have?.site).toBe('store-17')
    expect(source.contexts.at(-1)?.site).toBe('store-9')
    // A node without a site (or one that predates sites) says none, and an asker without one is told as before.
    const plain = await S.client.getHave(S.agentA.peerId, S.blob.digest)
    expect(plain?.site).toBeUndefined()
    expect([...plain!.bitfield.indexes()]).toEqual([1, 3])
  })

  it('returns undefined for a blob the peer does not know', async () => {
    expect(await S.client.getHave(S.agentA.peerId, `sha256:${'1'.repeat(64)}` as Digest)).toBeUndefined()
  })

  it('long poll: answers as soon as a chunk is added', async () => {
    const source = new MemorySource()
    const b = await makeBlob(3 * 64 * KIB, 64 * KIB, 2, S.key)
    source.add(b, { held: [0] })
    const { node } = await S.freshServer({ source })
    const parked = source.nextWait()
    const t0 = performance.now()
    const answer = S.client.getHave(node.peerId, b.digest, { known: 1, waitMs: 8_000 })
    await parked
    source.addChunk(b.digest, 2)
    const have = await answer
    expect([...have!.bitfield.indexes()]).toEqual([0, 2])
    expect(performance.now() - t0).toBeLessThan(4_000)
  })

  it('long poll: answers with the same state when the wait elapses', async () => {
    const source = new MemorySource()
    const b = await makeBlob(3 * 64 * KIB, 64 * KIB, 3, S.key)
    source.add(b, { held: [0] })
    const { node } = await S.freshServer({ source })
    const t0 = performance.now()
    const have = await S.client.getHave(node.peerId, b.digest, { known: 1, waitMs: 60 })
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55)
    expect(have?.bitfield.count).toBe(1)
  })

  it("long poll: the wait comes on top of the server's request timeout", async () => {
    const source = new MemorySource()
    const b = await makeBlob(3 * 64 * KIB, 64 * KIB, 4, S.key)
    source.add(b, { held: [0] })
    // The wait is longer than the server's timeout; both leave room for a loaded two-core CI machine.
    const { node } = await S.freshServer({ source, requestTimeoutMs: 250 })
    const have = await S.client.getHave(node.peerId, b.digest, { known: 1, waitMs: 600 })
    expect(have?.bitfield.count).toBe(1)
  })

  it('long poll: answers at once when the count already differs or the blob is complete', async () => {
    const have = await S.client.getHave(S.agentA.peerId, S.blob.digest, { known: 0, waitMs: 8_000 })
    expect(have?.bitfield.count).toBe(2)
    const full = await S.client.getHave(S.seeder.peerId, S.blob.digest, { known: 5, waitMs: 8_000 })
    expect(full?.complete).toBe(true)
  })
})

describe('chunk', () => {
  it('returns every chunk byte-identical, with its attestation, four at a time', async () => {
    const results = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => S.client.getChunk(S.seeder.peerId, S.blob.digest, i, { maxBytes: 256 * KIB })),
    )
    results.forEach((r, i) => {
      if (typeof r === 'string') throw new Error(`chunk ${i}: ${r}`)
      expect(Buffer.from(r.bytes).equals(Buffer.from(S.blob.chunk(i)))).toBe(true)
      expect(r.attestation).toEqual(S.blob.attestations[i])
    })
    const last = results[4]!
    expect(typeof last !== 'string' && last.bytes.byteLength).toBe(1000)
  })

  it('reports the bytes received so far while a chunk arrives', async () => {
    const seen: number[] = []
    const res = await S.client.getChunk(S.seeder.peerId, S.blob.digest, 0, { onProgress: (n) => seen.push(n) })
    if (typeof res === 'string') throw new Error(`chunk 0: ${res}`)
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.at(-1)).toBe(res.bytes.byteLength)
    expect([...seen].sort((a, b) => a - b)).toEqual(seen)
  })

  it("returns 'none' for a chunk the peer does not hold, and for an unknown blob", async () => {
    expect(await S.client.getChunk(S.agentA.peerId, S.blob.digest, 0)).toBe('none')
    const held = await S.client.getChunk(S.agentA.peerId, S.blob.digest, 3)
    expect(typeof held !== 'string' && held.attestation).toBeUndefined()
    expect(await S.client.getChunk(S.agentA.peerId, `sha256:${'2'.repeat(64)}` as Digest, 0)).toBe('none')
  })

  it('refuses a chunk larger than maxBytes before reading it', async () => {
    const err = await S.client.getChunk(S.seeder.peerId, S.blob.digest, 0, { maxBytes: 1000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidMessageError)
  })

  it("answers 'busy' over maxConcurrentUploads, and serves again once a slot frees", async () => {
    const source = new MemorySource()
    source.add(S.blob)
    const hold = gate()
    source.readChunkGate = hold.promise
    const { node, server } = await S.freshServer({ source, maxConcurrentUploads: 1 })
    const first = S.client.getChunk(node.peerId, S.blob.digest, 0)
    await expect.poll(() => server.activeUploads).toBe(1)
    expect(await S.client.getChunk(node.peerId, S.blob.digest, 1)).toBe('busy')
    hold.open()
    const r = await first
    expect(typeof r !== 'string' && r.bytes.byteLength).toBe(256 * KIB)
    // The slot frees once the last frame drained into the stream, which can be after the client has the chunk.
    await expect.poll(() => server.activeUploads).toBe(0)
    expect(typeof (await S.client.getChunk(node.peerId, S.blob.digest, 1))).toBe('object')
  })

  it('keeps a request over maxConcurrentUploads waiting a moment for the slot instead of answering busy', async () => {
    const source = new MemorySource()
    source.add(S.blob)
    const hold = gate()
    source.readChunkGate = hold.promise
    const { node, server } = await S.freshServer({ source, maxConcurrentUploads: 1 })
    const first = S.client.getChunk(node.peerId, S.blob.digest, 0)
    await expect.poll(() => server.activeUploads).toBe(1)
    const second = S.client.getChunk(node.peerId, S.blob.digest, 1)
    await expect.poll(() => server.queuedUploads, { interval: 5 }).toBe(1)
    hold.open()
    const [r0, r1] = await Promise.all([first, second])
    expect(typeof r0 !== 'string' && r0.bytes.byteLength).toBe(256 * KIB)
    expect(typeof r1 !== 'string' && r1.bytes.byteLength).toBe(256 * KIB)
  })

  it('throttles uploads through the bucket and reports what it served', async () => {
    const served: { bytes: number; index: number }[] = []
    const uploadBucket = new TokenBucket({ bytesPerSecond: 2 * MIB, burstBytes: 64 * KIB })
    const { node } = await S.freshServer({
      source: S.seederSource,
      uploadBucket,
      onServed: (_peer, bytes, chunk) => served.push({ bytes, index: chunk.index }),
    })
    const t0 = performance.now()
    await Promise.all([0, 1, 2].map((i) => S.client.getChunk(node.peerId, S.blob.digest, i)))
    const elapsed = performance.now() - t0
    // 768 KiB at 2 MiB/s after a 64 KiB burst: at least 344 ms.
    expect(elapsed).toBeGreaterThanOrEqual(330)
    // onServed runs once the last bytes are handed to the transport, which can be after the client has them.
    await expect.poll(() => served.map((s) => s.index).sort()).toEqual([0, 1, 2])
    expect(served.every((s) => s.bytes === 256 * KIB)).toBe(true)
  })
})

describe('fetch', () => {
  it('asks a seeder to pull a blob and returns its geometry', async () => {
    const source = new MemorySource()
    const asked: string[] = []
    source.fetchImpl = async (digest, registry, name) => {
      asked.push(`${registry}/${name}@${digest}`)
      return { size: 10 * MIB, chunkSize: 4 * MIB }
    }
    const { node } = await S.freshServer({ source })
    const started = await S.client.fetch(node.peerId, S.blob.digest, 'localhost:5000', 'library/alpine')
    expect(started).toEqual({ size: 10 * MIB, chunkSize: 4 * MIB })
    expect(asked).toEqual([`localhost:5000/library/alpine@${S.blob.digest}`])
  })

  it('fails with RemoteError when the peer cannot fetch', async () => {
    const err = await S.client.fetch(S.agentA.peerId, S.blob.digest, 'r.example', 'x').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteError)
    expect((err as RemoteError).code).toBe('CHUNK_PROTOCOL_REMOTE_ERROR')

    const source = new MemorySource()
    source.fetchImpl = async () => {
      throw new Error('origin said 404')
    }
    const { node } = await S.freshServer({ source })
    const err2 = await S.client.fetch(node.peerId, S.blob.digest, 'r.example', 'x').catch((e: unknown) => e)
    expect(err2).toBeInstanceOf(RemoteError)
    expect((err2 as Error).message).toContain('origin said 404')
  })
})

describe('timeouts, aborts and failures', () => {
  it('fails with PeerTimeoutError when the peer does not answer in time', async () => {
    const source = new MemorySource()
    source.add(S.blob)
    const hold = gate()
    source.mapGate = hold.promise
    S.scoped.push(async () => hold.open())
    const { node } = await S.freshServer({ source })
    const slow = new ChunkClient({ node: S.agentB, requestTimeoutMs: 100 })
    const err = await slow.getMap(node.peerId, S.blob.digest).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PeerTimeoutError)
    expect((err as PeerTimeoutError).code).toBe('CHUNK_PROTOCOL_PEER_TIMEOUT')
  })

  it('the server resets a request its source cannot answer in time; the client sees ProtocolError', async () => {
    const source = new MemorySource()
    source.add(S.blob)
    const hold = gate()
    source.readChunkGate = hold.promise
    S.scoped.push(async () => hold.open())
    const { node, server } = await S.freshServer({ source, requestTimeoutMs: 100 })
    const err = await S.client.getChunk(node.peerId, S.blob.digest, 0).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProtocolError)
    hold.open()
    await expect.poll(() => server.activeUploads).toBe(0)
  })

  it("rejects with the caller's abort reason", async () => {
    const source = new MemorySource()
    source.add(S.blob, { held: [0] })
    const { node } = await S.freshServer({ source })
    const controller = new AbortController()
    const parked = source.nextWait()
    const polling = S.client.getHave(node.peerId, S.blob.digest, { known: 1, waitMs: 8_000, signal: controller.signal })
    await parked
    controller.abort(new Error('download cancelled'))
    await expect(polling).rejects.toThrow('download cancelled')
    // The reset reaches the server, which stops waiting for a peer that is gone.
    await expect.poll(() => source.waiters).toBe(0)
  })

  it('fails with ProtocolError once the server is stopped', async () => {
    const source = new MemorySource()
    source.add(S.blob)
    const { node, server } = await S.freshServer({ source })
    expect(await S.client.getHave(node.peerId, S.blob.digest)).toBeDefined()
    await server.stop()
    expect(server.isStarted()).toBe(false)
    await expect(S.client.getHave(node.peerId, S.blob.digest)).rejects.toBeInstanceOf(ProtocolError)
  })
})
