/**
 * `/shoal/manifests/1.0.0` between real libp2p nodes (TCP on 127.0.0.1): the real server over a manifest cache, and
 * raw handlers that answer what the real server never would (wrong bytes, too many bytes, nothing at all).
 */
import type { Stream } from '@libp2p/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Digest, digestOf, MAX_MANIFEST_BYTES, OCI_MANIFEST } from '../../../../shared/oci/index.ts'
import type { P2PNode } from '../../../../shared/p2p/index.ts'
import { MemoryManifestCache } from '../../../../shared/store/index.ts'
import {
  decodeManifestRequest,
  encodeManifestResponse,
  MANIFEST_PROTOCOL,
  ManifestClient,
  ManifestServer,
} from '../../../../shared/swarm/manifests/index.ts'
import { FrameStream } from '../../../../shared/swarm/protocol/framing.ts'
import { InvalidMessageError, PeerTimeoutError, ProtocolError } from '../../../../shared/swarm/wire/index.ts'
import { Nodes } from '../protocol/helpers.ts'

const manifest = new TextEncoder().encode(
  JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }),
)
const digest = digestOf(manifest)
const unknown = `sha256:${'0'.repeat(64)}` as Digest

const nodes = new Nodes()
let server: P2PNode
let asker: P2PNode
let raw: P2PNode
let plain: P2PNode
let client: ManifestClient
/** What the raw node answers next (set per test). */
let answer: (frames: FrameStream, stream: Stream) => Promise<void>

beforeAll(async () => {
  server = await nodes.start()
  asker = await nodes.start()
  raw = await nodes.start()
  plain = await nodes.start()
  const cache = new MemoryManifestCache()
  await cache.putManifest(digest, OCI_MANIFEST, manifest)
  const s = new ManifestServer({ registrar: server }, { cache })
  await s.start()
  nodes.defer(() => s.stop())
  await raw.handle(MANIFEST_PROTOCOL, async (stream) => {
    const frames = new FrameStream(stream, { maxBufferBytes: 64 * 1024 })
    decodeManifestRequest(await frames.read(4096))
    await answer(frames, stream)
  })
  for (const n of [server, raw, plain]) await asker.dial(n.getMultiaddrs()[0]!)
  client = new ManifestClient({ node: asker, requestTimeoutMs: 2_000 })
})
afterAll(() => nodes.stopAll())

describe('the real server', () => {
  it('gives a cached manifest byte for byte, with its media type', async () => {
    const got = await client.get(server.peerId, digest)
    expect(got?.mediaType).toBe(OCI_MANIFEST)
    expect(Buffer.from(got!.bytes).equals(Buffer.from(manifest))).toBe(true)
  })

  it('answers none for a digest it does not hold', async () => {
    expect(await client.get(server.peerId, unknown)).toBeUndefined()
  })

  it('answers none when the cache hands it bytes that do not hash to the digest (a damaged record)', async () => {
    const damaged = await nodes.start()
    const s = new ManifestServer(
      { registrar: damaged },
      { cache: { getManifest: async () => ({ mediaType: OCI_MANIFEST, bytes: new Uint8Array([1, 2, 3]) }) } },
    )
    await s.start()
    nodes.defer(() => s.stop())
    expect(await client.get(damaged.getMultiaddrs()[0]!, digest)).toBeUndefined()
  })
})

describe('a seeder that pulls what it lacks', () => {
  it('pulls on a miss only when the request says where the digest was resolved, then answers from its cache', async () => {
    const seeder = await nodes.start()
    const cache = new MemoryManifestCache()
    const pulls: string[] = []
    const s = new ManifestServer(
      { registrar: seeder },
      {
        cache,
        fetch: async (d, registry, name) => {
          pulls.push(`${registry}/${name}@${d}`)
          await cache.putManifest(d, OCI_MANIFEST, manifest)
        },
      },
    )
    await s.start()
    nodes.defer(() => s.stop())
    const at = seeder.getMultiaddrs()[0]!
    expect(await client.get(at, digest)).toBeUndefined()
    expect(pulls).toEqual([])
    const got = await client.get(at, digest, { where: { registry: 'origin.test', name: 'demo/app' } })
    expect(Buffer.from(got!.bytes).equals(Buffer.from(manifest))).toBe(true)
    expect(pulls).toEqual([`origin.test/demo/app@${digest}`])
  })
})

describe('the asking side never trusts the bytes', () => {
  it('refuses bytes that do not hash to the digest', async () => {
    answer = async (frames, stream) => {
      const wrong = new TextEncoder().encode('{"schemaVersion":2,"layers":["evil"]}')
      await frames.write([
        encodeManifestResponse({ t: 'manifest', mediaType: OCI_MANIFEST, length: wrong.byteLength }),
        wrong,
      ])
      await stream.close()
    }
    await expect(client.get(raw.peerId, digest)).rejects.toBeInstanceOf(InvalidMessageError)
  })

  it('refuses an answer announcing more than MAX_MANIFEST_BYTES before reading its body', async () => {
    answer = async (frames, stream) => {
      const header = new TextEncoder().encode(
        JSON.stringify({ t: 'manifest', mediaType: OCI_MANIFEST, length: MAX_MANIFEST_BYTES + 1 }),
      )
      await frames.write([header])
      await stream.close()
    }
    await expect(client.get(raw.peerId, digest)).rejects.toBeInstanceOf(InvalidMessageError)
  })

  it('refuses a data frame longer than the header announced', async () => {
    answer = async (frames, stream) => {
      await frames.write([encodeManifestResponse({ t: 'manifest', mediaType: OCI_MANIFEST, length: 10 }), manifest])
      await stream.close()
    }
    await expect(client.get(raw.peerId, digest)).rejects.toBeInstanceOf(InvalidMessageError)
  })

  it('gives up on a peer that does not answer within the timeout', async () => {
    answer = () => new Promise(() => {})
    const start = performance.now()
    await expect(client.get(raw.peerId, digest, { timeoutMs: 300 })).rejects.toBeInstanceOf(PeerTimeoutError)
    expect(performance.now() - start).toBeLessThan(2_000)
  })

  it('fails with a ProtocolError against a peer that does not speak the protocol (an earlier release)', async () => {
    await expect(client.get(plain.peerId, digest)).rejects.toBeInstanceOf(ProtocolError)
  })

  it('rejects with the caller’s reason when the caller aborts', async () => {
    answer = () => new Promise(() => {})
    const c = new AbortController()
    const reason = new Error('client went away')
    setTimeout(() => c.abort(reason), 50)
    await expect(client.get(raw.peerId, digest, { signal: c.signal })).rejects.toBe(reason)
  })
})
