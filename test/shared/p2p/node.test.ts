import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type PeerId, peerDiscoverySymbol } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { digestOf } from '../../../shared/oci/digest.ts'
import {
  AGENT_CONNECTION_LIMITS,
  blobCid,
  createP2PNode,
  DHT_PROTOCOL,
  generateSwarmKey,
  InvalidBootstrapEntryError,
  InvalidSwarmKeyError,
  type P2PNode,
  type P2PNodeOptions,
  peerStoreCacheStats,
  quietDiscovery,
  routingTableMapper,
  SEEDER_CONNECTION_LIMITS,
} from '../../../shared/p2p/index.ts'

const LOOPBACK = ['/ip4/127.0.0.1/tcp/0']
const cleanups: (() => Promise<void>)[] = []
const rejections: unknown[] = []
const onRejection = (reason: unknown): void => {
  rejections.push(reason)
}

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-p2p-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function start(opts: Partial<P2PNodeOptions> = {}): Promise<P2PNode> {
  const node = await createP2PNode({ dataDir: await tempDir(), listen: LOOPBACK, ...opts })
  cleanups.push(async () => {
    await node.stop()
  })
  return node
}

function addrOf(node: P2PNode): string {
  const a = node.getMultiaddrs()[0]
  if (a === undefined) throw new Error('node has no listen address')
  return a.toString()
}

/** Resolves once `node` has identified `peer` as a Shoal DHT peer (the point where kad-dht can use it). */
async function dhtPeerKnown(node: P2PNode, peer: PeerId): Promise<void> {
  const identified = new Promise<void>((resolve) => {
    const listener = (evt: CustomEvent<{ peerId: PeerId }>): void => {
      if (!evt.detail.peerId.equals(peer)) return
      node.removeEventListener('peer:identify', listener)
      resolve()
    }
    node.addEventListener('peer:identify', listener)
  })
  const known = await node.peerStore.get(peer).then(
    (p) => p.protocols.includes(DHT_PROTOCOL),
    () => false,
  )
  if (!known) await identified
}

describe('createP2PNode', () => {
  it("sets the connection manager limits: an agent's by default, a seeder's when asked", async () => {
    const max = (n: P2PNode) =>
      (
        n as unknown as { components: { connectionManager: { getMaxConnections(): number } } }
      ).components.connectionManager.getMaxConnections()
    expect(max(await start())).toBe(AGENT_CONNECTION_LIMITS.maxConnections)
    expect(max(await start({ connections: SEEDER_CONNECTION_LIMITS }))).toBe(SEEDER_CONNECTION_LIMITS.maxConnections)
    expect(AGENT_CONNECTION_LIMITS.maxConnections).not.toBe(300) // libp2p's default, the one this replaces
  })

  it('accepts more than five inbound connections a second from one address (the nodes of a site behind one NAT)', async () => {
    const listener = await start()
    // libp2p's default turns away a host's sixth connection within a second; these all come from 127.0.0.1.
    const dialers = await Promise.all(Array.from({ length: 9 }, () => start()))
    const results = await Promise.allSettled(
      dialers.map((d) => d.dial(listener.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(10_000) })),
    )
    expect(results.filter((r) => r.status === 'rejected')).toEqual([])
    // The listener counts a connection once its side of the upgrade is done, a moment after the dialler's.
    for (let i = 0; i < 100 && listener.getConnections().length < 9; i++) await new Promise((r) => setTimeout(r, 50))
    expect(listener.getConnections().length).toBe(9)
  }, 30_000)

  it('provides a blob on one of six loopback nodes and finds it from another through the DHT', async () => {
    process.on('unhandledRejection', onRejection)
    try {
      const seed = await start()
      const others = await Promise.all(Array.from({ length: 5 }, () => start({ bootstrap: [addrOf(seed)] })))
      await Promise.all(others.map((n) => dhtPeerKnown(seed, n.peerId)))
      await Promise.all(others.map((n) => dhtPeerKnown(n, seed.peerId)))

      const provider = others[2]!
      const seeker = others[4]!
      const cid = blobCid(digestOf(new TextEncoder().encode('a layer')))
      for await (const _ of provider.services.dht.provide(cid, { signal: AbortSignal.timeout(10_000) })) {
        // draining the query runs it
      }

      let found: { id: PeerId; multiaddrs: readonly { toString(): string }[] } | undefined
      for await (const evt of seeker.services.dht.findProviders(cid, { signal: AbortSignal.timeout(10_000) })) {
        if (evt.name !== 'PROVIDER') continue
        found = evt.providers.find((p) => p.id.equals(provider.peerId))
        if (found !== undefined) break
      }
      expect(found?.id.toString()).toBe(provider.peerId.toString())
      // The default kad-dht mapper would strip loopback addresses and leave an undialable provider.
      expect(found?.multiaddrs.some((a) => a.toString().startsWith('/ip4/127.0.0.1/tcp/'))).toBe(true)

      for (const c of cleanups.splice(0).reverse()) await c()
      await new Promise((resolve) => setImmediate(resolve))
      expect(rejections).toEqual([])
    } finally {
      process.off('unhandledRejection', onRejection)
    }
  })

  it('never queues itself for its routing table: no ping to itself however often answers name it', async () => {
    const seed = await start()
    const others = await Promise.all(Array.from({ length: 3 }, () => start({ bootstrap: [addrOf(seed)] })))
    await Promise.all(others.map((n) => dhtPeerKnown(seed, n.peerId)))
    await Promise.all(others.map((n) => dhtPeerKnown(n, seed.peerId)))
    const asker = others[0]!
    const pinged: string[] = []
    const ping = asker.services.ping.ping.bind(asker.services.ping)
    asker.services.ping.ping = (async (peer: PeerId, options?: object) => {
      pinged.push(peer.toString())
      return ping(peer, options)
    }) as typeof asker.services.ping.ping
    // Every answer to these queries names the asker among the peers closest to its own key.
    for (let i = 0; i < 3; i++) {
      for await (const _ of asker.services.dht.getClosestPeers(asker.peerId.toMultihash().bytes, {
        signal: AbortSignal.timeout(10_000),
      })) {
        // draining the query runs it
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(pinged.filter((p) => p === asker.peerId.toString())).toEqual([])
  })

  it('routingTableMapper keeps every address of other peers and none of its own', async () => {
    const [a, b] = await Promise.all([start(), start()])
    const map = routingTableMapper(a.peerId)
    const addrs = b.getMultiaddrs()
    expect(map({ id: b.peerId, multiaddrs: addrs }).multiaddrs).toEqual(addrs)
    expect(map({ id: a.peerId, multiaddrs: a.getMultiaddrs() }).multiaddrs).toEqual([])
  })

  it('quietDiscovery passes a peer on when it is new, its addresses changed, or the repeat time passed', async () => {
    const [a, b] = await Promise.all([start(), start()])
    let now = 0
    class Service {
      readonly events = new EventTarget();
      [peerDiscoverySymbol] = this.events
      readonly #secret = 42
      answer(): number {
        return this.#secret
      }
    }
    const service = quietDiscovery(
      () => new Service(),
      1000,
      () => now,
    )(undefined)
    const passed: string[] = []
    const quiet = (service as unknown as Record<symbol, EventTarget>)[peerDiscoverySymbol]!
    quiet.addEventListener('peer', (e) => passed.push((e as CustomEvent<{ id: PeerId }>).detail.id.toString()))
    const announce = (id: PeerId, addrs: P2PNode['getMultiaddrs']) =>
      service.events.dispatchEvent(new CustomEvent('peer', { detail: { id, multiaddrs: addrs() } }))
    announce(a.peerId, () => a.getMultiaddrs()) // new: passed
    announce(a.peerId, () => a.getMultiaddrs()) // the same again: not
    announce(b.peerId, () => b.getMultiaddrs()) // another peer: passed
    announce(a.peerId, () => []) // other addresses: passed
    now = 999
    announce(b.peerId, () => b.getMultiaddrs()) // within the repeat time: not
    now = 1000
    announce(b.peerId, () => b.getMultiaddrs()) // repeat time passed: passed
    expect(passed).toEqual([a.peerId, b.peerId, a.peerId, b.peerId].map(String))
    // The rest of the service is the service, private fields and all.
    expect(service.answer()).toBe(42)
    // A service that is no peer discovery is returned as it is.
    const plain = { x: 1 }
    expect(quietDiscovery(() => plain)(undefined)).toBe(plain)
  })

  it('is a DHT server by default and a client with dhtServer: false', async () => {
    const server = await start()
    const client = await start({ dhtServer: false })
    expect(server.services.dht.getMode()).toBe('server')
    expect(client.services.dht.getMode()).toBe('client')
  })

  it('keeps its peer id across restarts with the same data directory', async () => {
    const dataDir = await tempDir()
    const first = await createP2PNode({ dataDir, listen: LOOPBACK })
    const id = first.peerId.toString()
    await first.stop()
    const second = await createP2PNode({ dataDir, listen: LOOPBACK })
    cleanups.push(async () => {
      await second.stop()
    })
    expect(second.peerId.toString()).toBe(id)
    expect(second.peerId.type).toBe('Ed25519')
  })

  it('connects only to peers holding the same swarm key', async () => {
    const key = new TextEncoder().encode(generateSwarmKey())
    const a = await start({ swarmKey: key })
    const b = await start({ swarmKey: key })
    const stranger = await start({ swarmKey: new TextEncoder().encode(generateSwarmKey()) })
    const open = await start()

    const conn = await b.dial(a.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
    expect(conn.remotePeer.equals(a.peerId)).toBe(true)
    await expect(stranger.dial(a.getMultiaddrs(), { signal: AbortSignal.timeout(1_000) })).rejects.toThrow()
    await expect(open.dial(a.getMultiaddrs(), { signal: AbortSignal.timeout(1_000) })).rejects.toThrow()
    expect(a.getConnections(stranger.peerId)).toEqual([])
    expect(a.getConnections(open.peerId)).toEqual([])
  })

  it('negotiates TLS by default and falls back to Noise for a Noise-only peer', async () => {
    const a = await start()
    const b = await start()
    const noiseOnly = await start({ encrypters: ['noise'] })
    const tlsConn = await b.dial(a.getMultiaddrs())
    expect(tlsConn.encryption).toBe('/tls/1.0.0')
    const noiseConn = await noiseOnly.dial(a.getMultiaddrs())
    expect(noiseConn.encryption).toBe('/noise')
  })

  it('opens and accepts streams without a peer store write per stream, and the store still lists the protocol', async () => {
    const a = await start()
    const b = await start()
    await b.handle('/shoal-test/echo/1', async (stream) => {
      for await (const _ of stream) void _
      await stream.close()
    })
    await a.dial(b.getMultiaddrs())
    const before = { a: { ...peerStoreCacheStats(a)! }, b: { ...peerStoreCacheStats(b)! } }
    const streams = 20
    for (let i = 0; i < streams; i++) {
      const s = await a.dialProtocol(b.peerId, '/shoal-test/echo/1')
      s.send(new Uint8Array([i]))
      await s.close()
    }
    // Each stream merges its protocol into the other side's record, on both sides (libp2p's connection.js): after
    // the first, the record lists it and the merge costs no lock, load or write.
    expect(peerStoreCacheStats(a)!.mergesSkipped - before.a.mergesSkipped).toBeGreaterThanOrEqual(streams - 1)
    expect(peerStoreCacheStats(b)!.mergesSkipped - before.b.mergesSkipped).toBeGreaterThanOrEqual(streams - 1)
    expect(peerStoreCacheStats(a)!.writes - before.a.writes).toBeLessThan(streams / 2)
    expect((await a.peerStore.get(b.peerId)).protocols).toContain('/shoal-test/echo/1')
  })

  it('rejects a bad swarm key or bootstrap entry before opening any socket', async () => {
    const dataDir = await tempDir()
    await expect(
      createP2PNode({ dataDir, listen: LOOPBACK, swarmKey: new TextEncoder().encode('not a key') }),
    ).rejects.toBeInstanceOf(InvalidSwarmKeyError)
    await expect(createP2PNode({ dataDir, listen: LOOPBACK, bootstrap: ['seed:4001'] })).rejects.toBeInstanceOf(
      InvalidBootstrapEntryError,
    )
  })

  it('honours an aborted signal', async () => {
    const ac = new AbortController()
    ac.abort()
    await expect(createP2PNode({ dataDir: await tempDir(), listen: LOOPBACK, signal: ac.signal })).rejects.toThrow(
      /abort/i,
    )
  })
})
