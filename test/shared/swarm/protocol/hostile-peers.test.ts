/**
 * Hostile peers on real libp2p nodes: a raw client sending garbage to a ChunkServer, and raw servers answering a
 * ChunkClient with malformed or mismatched responses. Nothing may crash; every bad message is a named error.
 */
import type { Stream } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { encodeSignedChunkMap } from '../../../../shared/chunks/signed-map.ts'
import type { Digest } from '../../../../shared/oci/digest.ts'
import type { P2PNode } from '../../../../shared/p2p/index.ts'
import { CHUNK_PROTOCOL, InvalidMessageError, ProtocolError } from '../../../../shared/swarm/protocol/index.ts'
import { encodeVarint } from '../../../../shared/swarm/protocol/framing.ts'
import { KIB, MIB } from './helpers.ts'
import { useSwarm } from './swarm-fixture.ts'

const S = useSwarm()

/** Opens a raw stream to `node` and returns it with a function that collects what comes back until it ends. */
async function rawStream(node: P2PNode): Promise<{ stream: Stream; collect: () => Promise<Outcome> }> {
  const stream = await S.agentB.dialProtocol(node.peerId, CHUNK_PROTOCOL)
  const collect = async (): Promise<Outcome> => {
    let bytes = 0
    try {
      for await (const chunk of stream) bytes += chunk.byteLength
      return { bytes, error: undefined }
    } catch (err) {
      return { bytes, error: err as Error }
    }
  }
  return { stream, collect }
}

interface Outcome {
  readonly bytes: number
  readonly error: Error | undefined
}

describe('hostile clients', () => {
  async function sendRaw(bytes: Uint8Array): Promise<Outcome> {
    const { stream, collect } = await rawStream(S.seeder)
    const outcome = collect()
    stream.send(bytes)
    // The server may reset the stream while we still send: closing then fails, which is the point.
    await stream.close().catch(() => {})
    return outcome
  }

  const frame = (body: Uint8Array): Uint8Array => Buffer.concat([encodeVarint(body.byteLength), body])
  const json = (v: unknown): Uint8Array => frame(new TextEncoder().encode(JSON.stringify(v)))

  const cases: [string, () => Uint8Array][] = [
    ['garbage bytes', () => frame(Uint8Array.of(0xde, 0xad, 0xbe, 0xef))],
    ['not JSON', () => frame(new TextEncoder().encode('{"t":'))],
    ['unknown type', () => json({ t: 'delete', digest: S.blob.digest })],
    ['invalid digest', () => json({ t: 'chunk', digest: 'sha256:../../etc/passwd', index: 0 })],
    ['index out of range', () => json({ t: 'chunk', digest: S.blob.digest, index: 5 })],
    ['oversized frame prefix', () => encodeVarint(10 * MIB)],
    ['non-minimal prefix', () => Uint8Array.of(0x80, 0x00)],
  ]
  it.each(cases)('resets the stream on %s, logs InvalidMessageError, and keeps serving', async (_, make) => {
    S.logLines.length = 0
    const outcome = await sendRaw(make())
    expect(outcome.bytes).toBe(0)
    expect(outcome.error).toBeDefined()
    expect(S.logLines.some((l) => l.level === 20 && l.err?.type === 'InvalidMessageError')).toBe(true)
    expect(await S.client.getHave(S.seeder.peerId, S.blob.digest)).toBeDefined()
  })

  it('aborts a stream that sends a huge frame in full, and keeps serving', async () => {
    const outcome = await sendRaw(Buffer.concat([encodeVarint(2 * MIB), new Uint8Array(2 * MIB)]))
    expect(outcome.bytes).toBe(0)
    expect(outcome.error).toBeDefined()
    expect(await S.client.getHave(S.seeder.peerId, S.blob.digest)).toBeDefined()
  })

  it('closes quietly on a stream that ends without a request', async () => {
    const outcome = await sendRaw(new Uint8Array(0))
    expect(outcome.bytes).toBe(0)
    expect(await S.client.getHave(S.seeder.peerId, S.blob.digest)).toBeDefined()
  })

  it('resets a stream whose request never comes, after the request timeout', async () => {
    const { node } = await S.freshServer({ source: S.seederSource, requestTimeoutMs: 100 })
    const { stream, collect } = await rawStream(node)
    stream.send(Uint8Array.of(0x05, 0x7b)) // 1 of 5 announced bytes, then silence
    const t0 = performance.now()
    const outcome = await collect()
    expect(outcome.error).toBeDefined()
    expect(outcome.bytes).toBe(0)
    expect(performance.now() - t0).toBeLessThan(3_000)
  })
})

describe('hostile servers', () => {
  /** Serves every request on `node` with `respond(request bytes)`, written raw. */
  async function rawServer(respond: (stream: Stream) => Promise<void>): Promise<P2PNode> {
    const node = await S.spareNode()
    S.scoped.push(() => node.unhandle(CHUNK_PROTOCOL))
    await node.handle(CHUNK_PROTOCOL, async (stream) => {
      try {
        await respond(stream)
        await stream.close()
      } catch (err) {
        stream.abort(err as Error)
      }
    })
    return node
  }
  const frame = (body: Uint8Array): Uint8Array => Buffer.concat([encodeVarint(body.byteLength), body])
  const json = (v: unknown): Uint8Array => frame(new TextEncoder().encode(JSON.stringify(v)))

  const cases: [string, (digest: Digest) => Uint8Array, 'chunk' | 'have' | 'map'][] = [
    [
      'a data frame longer than announced',
      () => Buffer.concat([json({ t: 'chunk', index: 0, length: 100 }), frame(new Uint8Array(101))]),
      'chunk',
    ],
    [
      'a data frame shorter than announced',
      () => Buffer.concat([json({ t: 'chunk', index: 0, length: 100 }), frame(new Uint8Array(99))]),
      'chunk',
    ],
    ['an announced length over maxBytes', () => json({ t: 'chunk', index: 0, length: 2 * MIB }), 'chunk'],
    ['another chunk than asked', () => json({ t: 'chunk', index: 1, length: 100 }), 'chunk'],
    ['a response of the wrong type', () => json({ t: 'fetching', size: 1, chunkSize: 64 * KIB }), 'chunk'],
    [
      'a have whose bits have spare bits set',
      () => json({ t: 'have', size: 3 * 64 * KIB, chunkSize: 64 * KIB, bits: '/w==', count: 8, complete: false }),
      'have',
    ],
    [
      'a have whose bits do not fit the size',
      () => json({ t: 'have', size: 20 * 64 * KIB, chunkSize: 64 * KIB, bits: '4A==', count: 3, complete: false }),
      'have',
    ],
    [
      'a map for another blob',
      () => {
        const body = encodeSignedChunkMap(S.other.signed)
        return Buffer.concat([json({ t: 'map', length: body.byteLength }), frame(body)])
      },
      'map',
    ],
    [
      'a map frame that is not a map',
      () => Buffer.concat([json({ t: 'map', length: 3 }), frame(Uint8Array.of(1, 2, 3))]),
      'map',
    ],
    ['garbage instead of JSON', () => frame(Uint8Array.of(0xff, 0xfe)), 'have'],
  ]
  it.each(cases)('rejects %s with InvalidMessageError', async (_, make, kind) => {
    const node = await rawServer(async (stream) => {
      stream.send(make(S.blob.digest))
    })
    const call =
      kind === 'chunk'
        ? S.client.getChunk(node.peerId, S.blob.digest, 0, { maxBytes: MIB })
        : kind === 'have'
          ? S.client.getHave(node.peerId, S.blob.digest)
          : S.client.getMap(node.peerId, S.blob.digest)
    await expect(call).rejects.toBeInstanceOf(InvalidMessageError)
  })

  it('fails with ProtocolError when the server hangs up before answering', async () => {
    const node = await rawServer(async () => {})
    await expect(S.client.getHave(node.peerId, S.blob.digest)).rejects.toBeInstanceOf(ProtocolError)
  })
})
