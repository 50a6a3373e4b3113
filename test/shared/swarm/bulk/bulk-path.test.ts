/**
 * The bulk data path between real libp2p nodes on 127.0.0.1: tickets over `/shoal/chunks/1.0.0`, chunk bytes over
 * mutual-TLS HTTPS, and the fall back to the libp2p stream whenever the bulk path cannot be used.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chunkCount, chunkRange } from '../../../../shared/chunks/chunk-map.ts'
import { createP2PNode, generateSwarmKey, loadOrCreateIdentity, type P2PNode } from '../../../../shared/p2p/index.ts'
import {
  BulkClient,
  type BulkCredentials,
  BulkIdentityError,
  BulkTicketRejectedError,
  createBulkCredentials,
} from '../../../../shared/swarm/bulk/index.ts'
import { FrameStream } from '../../../../shared/swarm/protocol/framing.ts'
import {
  CHUNK_PROTOCOL,
  ChunkClient,
  ChunkServer,
  type ChunkServerInit,
  decodeRequest,
  encodeResponse,
  MAX_CONTROL_FRAME_BYTES,
} from '../../../../shared/swarm/protocol/index.ts'
import { addrOf, gate, KIB, MemorySource, makeBlob, seederKey, type TestBlob } from '../protocol/helpers.ts'

interface Peer {
  readonly node: P2PNode
  readonly key: PrivateKey
  readonly credentials: BulkCredentials
}

const cleanups: (() => unknown)[] = []

async function peer(opts: { swarmKey?: Uint8Array } = {}): Promise<Peer> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bulk-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const node = await createP2PNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], ...opts })
  cleanups.push(() => node.stop())
  const key = await loadOrCreateIdentity(dir)
  return { node, key, credentials: await createBulkCredentials(key) }
}

async function serve(p: Peer, init: Omit<ChunkServerInit, 'source'> & { source: MemorySource }): Promise<ChunkServer> {
  const server = new ChunkServer({ registrar: p.node }, init)
  await server.start()
  cleanups.push(() => server.stop())
  return server
}

let blob: TestBlob
let other: TestBlob
let requester: Peer
let bulkClient: BulkClient
const served: { peer: PeerId; bytes: number; index: number }[] = []
/** A server with the bulk path. */
let good: Peer
let goodServer: ChunkServer
const goodSource = new MemorySource()

beforeAll(async () => {
  const key = await seederKey()
  blob = await makeBlob(5 * 64 * KIB + 123, 64 * KIB, 7, key)
  other = await makeBlob(64 * KIB, 64 * KIB, 8, key)
  ;[requester, good] = await Promise.all([peer(), peer()])
  goodSource.add(blob, { attestations: true })
  goodSource.add(other)
  goodServer = await serve(good, {
    source: goodSource,
    maxConcurrentUploads: 2,
    bulk: { credentials: good.credentials, listen: { host: '127.0.0.1', port: 0 } },
    onServed: (p, bytes, chunk) => served.push({ peer: p, bytes, index: chunk.index }),
  })
  bulkClient = new BulkClient({ credentials: requester.credentials })
  cleanups.push(() => bulkClient.stop())
  await requester.node.dial(addrOf(good.node))
})

afterAll(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {})
})

function newClient(): ChunkClient {
  return new ChunkClient({ node: requester.node, bulk: bulkClient, requestTimeoutMs: 10_000 })
}

async function fetchAll(client: ChunkClient, from: P2PNode, b: TestBlob): Promise<void> {
  const geometry = { size: b.bytes.byteLength, chunkSize: b.chunkSize }
  for (let i = 0; i < chunkCount(geometry.size, geometry.chunkSize); i++) {
    const { start, end } = chunkRange(geometry, i)
    const res = await client.getChunk(from.peerId, b.digest, i, { maxBytes: end - start })
    if (typeof res === 'string') throw new Error(`chunk ${i}: ${res}`)
    expectBytes(res.bytes, b.chunk(i))
  }
}

/** Byte equality whichever view (Buffer from one transport, Uint8Array from the other) holds them. */
function expectBytes(got: Uint8Array, want: Uint8Array): void {
  expect(Buffer.from(got).toString('hex')).toBe(Buffer.from(want).toString('hex'))
}

describe('bulk path', () => {
  it('moves every chunk over HTTPS, with its attestation, counted as served to the requester', async () => {
    const client = newClient()
    served.length = 0
    const n = chunkCount(blob.bytes.byteLength, blob.chunkSize)
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        client.getChunk(good.node.peerId, blob.digest, i, { maxBytes: blob.chunk(i).byteLength }),
      ),
    )
    for (const [i, res] of results.entries()) {
      // Two upload slots for six requests at once: some may be `busy`, as on the stream.
      if (res === 'busy') continue
      if (res === 'none') throw new Error(`chunk ${i}: none`)
      expectBytes(res.bytes, blob.chunk(i))
      expect(res.attestation).toEqual(blob.attestations[i])
    }
    await fetchAll(client, good.node, blob)
    expect(client.transfers).toEqual({ bulk: n + results.filter((r) => r !== 'busy').length, stream: 0, fallbacks: 0 })
    // The server counts a response once its last byte is flushed, which may be after the client has it.
    await expect
      .poll(() => served.reduce((sum, s) => sum + s.bytes, 0))
      .toBe(
        blob.bytes.byteLength + results.reduce((sum, r) => sum + (typeof r === 'string' ? 0 : r.bytes.byteLength), 0),
      )
    expect(served.every((s) => s.peer.equals(requester.node.peerId))).toBe(true)
  })

  it('reports the bytes received so far while a chunk arrives over HTTPS', async () => {
    const client = newClient()
    const seen: number[] = []
    const res = await client.getChunk(good.node.peerId, blob.digest, 0, {
      maxBytes: blob.chunk(0).byteLength,
      onProgress: (n) => seen.push(n),
    })
    if (typeof res === 'string') throw new Error(`chunk 0: ${res}`)
    expect(client.transfers.bulk).toBe(1)
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.at(-1)).toBe(blob.chunk(0).byteLength)
    expect([...seen].sort((a, b) => a - b)).toEqual(seen)
  })

  it('answers none for a chunk the server does not hold', async () => {
    const client = newClient()
    const missing = await makeBlob(64 * KIB, 64 * KIB, 20, await seederKey())
    expect(await client.getChunk(good.node.peerId, missing.digest, 0)).toBe('none')
  })

  it('refuses a ticket for another blob, or presented by another peer', async () => {
    const client = newClient()
    const ticket = await client.getBulkTicket(good.node.peerId, blob.digest)
    if (ticket === undefined) throw new Error('no ticket')
    expect(ticket.port).toBe(goodServer.bulkPort)
    const opts = { maxBytes: 64 * KIB, signal: AbortSignal.timeout(10_000) }
    const ok = await bulkClient.getChunk(ticket, blob.digest, 0, opts)
    if (typeof ok === 'string') throw new Error(`chunk 0: ${ok}`)
    expectBytes(ok.bytes, blob.chunk(0))
    await expect(bulkClient.getChunk(ticket, other.digest, 0, opts)).rejects.toThrow(BulkTicketRejectedError)
    // Same token, no client certificate at all: who is asking is unproven.
    const anonymous = new Agent({ connect: { rejectUnauthorized: false } })
    try {
      const res = await request(`https://127.0.0.1:${ticket.port}/chunks/${blob.digest}/0`, {
        dispatcher: anonymous,
        headers: { authorization: `Bearer ${ticket.token}` },
      })
      await res.body.dump()
      expect(res.statusCode).toBe(401)
    } finally {
      await anonymous.close()
    }
    // Same token, another node's certificate: the ticket is bound to the requester's peer id.
    const stranger = new BulkClient({ credentials: await createBulkCredentials(await generateKeyPair('Ed25519')) })
    try {
      await expect(stranger.getChunk(ticket, blob.digest, 0, opts)).rejects.toThrow(BulkTicketRejectedError)
    } finally {
      await stranger.stop()
    }
  })

  it('refuses a server whose certificate is not the peer the ticket came from', async () => {
    const impostor = await peer()
    const source = new MemorySource()
    source.add(blob)
    // The libp2p side is `impostor`, the HTTPS side presents another identity.
    const wrong = await createBulkCredentials(await generateKeyPair('Ed25519'))
    await serve(impostor, { source, bulk: { credentials: wrong, listen: { host: '127.0.0.1', port: 0 } } })
    await requester.node.dial(addrOf(impostor.node))
    const client = newClient()
    const ticket = await client.getBulkTicket(impostor.node.peerId, blob.digest)
    if (ticket === undefined) throw new Error('no ticket')
    const direct = new BulkClient({ credentials: requester.credentials })
    try {
      await expect(
        direct.getChunk(ticket, blob.digest, 0, { maxBytes: 64 * KIB, signal: AbortSignal.timeout(10_000) }),
      ).rejects.toThrow(BulkIdentityError)
    } finally {
      await direct.stop()
    }
    // Through the chunk client: the chunk still arrives, over the authenticated libp2p stream.
    await fetchAll(client, impostor.node, blob)
    expect(client.transfers).toMatchObject({ bulk: 0, fallbacks: 1 })
    expect(client.transfers.stream).toBe(chunkCount(blob.bytes.byteLength, blob.chunkSize))
  })

  it('falls back to the libp2p stream when the bulk port cannot be reached, and stays there a while', async () => {
    const unreachable = await peer()
    const source = new MemorySource()
    source.add(blob)
    // Listening on another loopback address than the libp2p connection's: the ticket's port is closed there.
    await serve(unreachable, {
      source,
      bulk: { credentials: unreachable.credentials, listen: { host: '127.0.0.2', port: 0 } },
    })
    await requester.node.dial(addrOf(unreachable.node))
    const client = newClient()
    await fetchAll(client, unreachable.node, blob)
    expect(client.transfers).toEqual({
      bulk: 0,
      stream: chunkCount(blob.bytes.byteLength, blob.chunkSize),
      fallbacks: 1,
    })
  })

  it('uses the stream with a peer that serves no bulk path', async () => {
    const plain = await peer()
    const source = new MemorySource()
    source.add(blob)
    await serve(plain, { source })
    await requester.node.dial(addrOf(plain.node))
    const client = newClient()
    expect(await client.getBulkTicket(plain.node.peerId, blob.digest)).toBeUndefined()
    await fetchAll(client, plain.node, blob)
    expect(client.transfers).toMatchObject({ bulk: 0, fallbacks: 0 })
  })

  it('falls back when the peer predates bulk tickets (resets the stream on an unknown request)', async () => {
    const old = await peer()
    // What a 1.0.0 server without `bulk` does: the request does not decode, the stream is reset.
    await old.node.handle(CHUNK_PROTOCOL, async (stream) => {
      try {
        const frames = new FrameStream(stream, { maxBufferBytes: 2 * MAX_CONTROL_FRAME_BYTES })
        const req = decodeRequest(await frames.read(MAX_CONTROL_FRAME_BYTES))
        if (req.t !== 'chunk') throw new Error(`unknown request type ${req.t}`)
        const bytes = blob.chunk(req.index)
        await frames.write([encodeResponse({ t: 'chunk', index: req.index, length: bytes.byteLength })])
        await frames.writeData(bytes)
        await stream.close()
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
    })
    await requester.node.dial(addrOf(old.node))
    const client = newClient()
    await fetchAll(client, old.node, blob)
    expect(client.transfers).toEqual({
      bulk: 0,
      stream: chunkCount(blob.bytes.byteLength, blob.chunkSize),
      fallbacks: 0,
    })
  })

  it('hands tickets only to peers inside a private swarm (pnet): outsiders cannot even ask', async () => {
    const swarmKey = new TextEncoder().encode(generateSwarmKey())
    const [inside, member, outsider] = await Promise.all([peer({ swarmKey }), peer({ swarmKey }), peer()])
    const source = new MemorySource()
    source.add(blob)
    await serve(inside, { source, bulk: { credentials: inside.credentials, listen: { host: '127.0.0.1', port: 0 } } })
    const memberBulk = new BulkClient({ credentials: member.credentials })
    cleanups.push(() => memberBulk.stop())
    const memberClient = new ChunkClient({ node: member.node, bulk: memberBulk, requestTimeoutMs: 10_000 })
    await member.node.dial(addrOf(inside.node))
    await fetchAll(memberClient, inside.node, blob)
    expect(memberClient.transfers).toMatchObject({ bulk: chunkCount(blob.bytes.byteLength, blob.chunkSize), stream: 0 })
    const outsiderClient = new ChunkClient({ node: outsider.node, requestTimeoutMs: 1_000 })
    await expect(outsiderClient.getBulkTicket(addrOf(inside.node), blob.digest)).rejects.toThrow()
  })

  it('shares upload slots with the stream: a held slot makes the bulk path answer busy', async () => {
    const client = newClient()
    const streamOnly = new ChunkClient({ node: requester.node })
    const g = gate()
    goodSource.readChunkGate = g.promise
    try {
      const held = [0, 1].map((i) => streamOnly.getChunk(good.node.peerId, blob.digest, i))
      // Both slots are taken by stream requests parked in the source.
      await expect.poll(() => goodServer.activeUploads).toBe(2)
      expect(await client.getChunk(good.node.peerId, blob.digest, 2)).toBe('busy')
      g.open()
      await Promise.all(held)
    } finally {
      goodSource.readChunkGate = undefined
      g.open()
    }
  })
})
