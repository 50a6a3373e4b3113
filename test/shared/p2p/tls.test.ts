import { X509Certificate } from 'node:crypto'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type ConnectionEncrypter, type PrivateKey, UnexpectedPeerError } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { type Ping, ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { generateCertificate } from '@libp2p/tls/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import {
  CERTIFICATE_RENEW_MS,
  ReusedCertificateTls,
  reusedCertificateTls,
  TLS_PROTOCOL,
  VerifiedCertificates,
} from '../../../shared/p2p/tls.ts'

type Node = Libp2p<{ ping: Ping }>
type Encrypter = 'stock' | 'reused'

const nodes: Node[] = []

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()))
})

/** A real libp2p node on loopback TCP with yamux, securing its connections with one of the two encrypters. */
async function start(encrypter: Encrypter, privateKey?: PrivateKey, now?: () => number): Promise<Node> {
  const node = await createLibp2p({
    ...(privateKey === undefined ? {} : { privateKey }),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [encrypter === 'stock' ? tls() : reusedCertificateTls(now === undefined ? {} : { now })],
    streamMuxers: [yamux()],
    // Every test connection comes from 127.0.0.1; libp2p refuses a host's sixth within a second by default.
    connectionManager: { inboundConnectionThreshold: 1000 },
    services: { ping: ping() },
  })
  nodes.push(node)
  return node
}

function addrOf(node: Node): string {
  const a = node.getMultiaddrs()[0]
  if (a === undefined) throw new Error('node has no listen address')
  return a.toString()
}

function encrypterOf(node: Node): ReusedCertificateTls {
  const upgrader = (
    node as unknown as { components: { upgrader: { getConnectionEncrypters(): Map<string, unknown> } } }
  ).components.upgrader
  const e = upgrader.getConnectionEncrypters().get(TLS_PROTOCOL) as ConnectionEncrypter | undefined
  if (!(e instanceof ReusedCertificateTls)) throw new Error('node does not use ReusedCertificateTls')
  return e
}

/** Dials `to` from `from`, pings over the connection, hangs up; returns what the connection was. */
async function connectOnce(from: Node, to: Node): Promise<{ encryption?: string; multiplexer?: string }> {
  const conn = await from.dial(multiaddr(addrOf(to)))
  expect(conn.remotePeer.equals(to.peerId)).toBe(true)
  await from.services.ping.ping(to.peerId)
  const seen = { encryption: conn.encryption, multiplexer: conn.multiplexer }
  await from.hangUp(to.peerId)
  return seen
}

function derOf(pem: string): Uint8Array {
  return new Uint8Array(new X509Certificate(pem).raw)
}

describe('ReusedCertificateTls against the stock @libp2p/tls', () => {
  it.each<[Encrypter, Encrypter]>([
    ['reused', 'stock'],
    ['stock', 'reused'],
    ['reused', 'reused'],
  ])('a %s dialler and a %s listener connect, agree on yamux in the handshake and carry streams', async (d, l) => {
    const dialler = await start(d)
    const listener = await start(l)
    for (let i = 0; i < 2; i++) {
      expect(await connectOnce(dialler, listener)).toEqual({
        encryption: TLS_PROTOCOL,
        multiplexer: '/yamux/1.0.0',
      })
    }
    // The listener saw the dialler's peer id, proved by the certificate.
    const back = await listener.dial(dialler.peerId)
    expect(back.remotePeer.equals(dialler.peerId)).toBe(true)
  })

  it('presents one certificate on every connection; a stock node presents a new one each time', async () => {
    const listener = await start('reused')
    const reused = await start('reused')
    const stock = await start('stock')
    for (let i = 0; i < 3; i++) await connectOnce(reused, listener)
    expect(encrypterOf(listener).verified.size).toBe(1)
    for (let i = 0; i < 3; i++) await connectOnce(stock, listener)
    expect(encrypterOf(listener).verified.size).toBe(1 + 3)
    // And the other way round: the listener's one certificate, verified once by the dialler.
    expect(encrypterOf(reused).verified.size).toBe(1)
  })

  it('makes its certificate again an hour on, or at once when the clock went back past its making', async () => {
    let now = Date.now()
    const listener = await start('reused')
    const dialler = await start('reused', undefined, () => now)
    for (let i = 0; i < 2; i++) await connectOnce(dialler, listener)
    expect(encrypterOf(listener).verified.size).toBe(1)
    // The clock was fast when the certificate was made, then set right: a new one, valid from the right time.
    now -= 10 * 60_000
    for (let i = 0; i < 2; i++) await connectOnce(dialler, listener)
    expect(encrypterOf(listener).verified.size).toBe(2)
    now += CERTIFICATE_RENEW_MS - 1
    await connectOnce(dialler, listener)
    expect(encrypterOf(listener).verified.size).toBe(2)
    now += 1
    for (let i = 0; i < 2; i++) await connectOnce(dialler, listener)
    expect(encrypterOf(listener).verified.size).toBe(3)
  })

  it('refuses a listener that is not the peer dialled, with its certificate already verified or not', async () => {
    const listener = await start('reused')
    const other = await start('reused')
    const dialler = await start('reused')
    const wrong = multiaddr(`${addrOf(listener)}/p2p/${other.peerId.toString()}`)
    await expect(dialler.dial(wrong)).rejects.toThrow()
    expect(dialler.getConnections(other.peerId)).toHaveLength(0)
    await connectOnce(dialler, listener) // the listener's certificate is now in the dialler's cache
    expect(encrypterOf(dialler).verified.size).toBe(1)
    await expect(dialler.dial(wrong)).rejects.toThrow()
    expect(dialler.getConnections(other.peerId)).toHaveLength(0)
  })
})

describe('VerifiedCertificates', () => {
  async function certificate(key: PrivateKey): Promise<Uint8Array> {
    return derOf((await generateCertificate(key)).cert)
  }

  it('maps a certificate to the peer whose key signed it, and remembers it', async () => {
    const key = await generateKeyPair('Ed25519')
    const der = await certificate(key)
    const cache = new VerifiedCertificates(8)
    expect((await cache.peerOf(der)).equals(peerIdFromPrivateKey(key))).toBe(true)
    expect(cache.size).toBe(1)
    expect((await cache.peerOf(der, peerIdFromPrivateKey(key))).equals(peerIdFromPrivateKey(key))).toBe(true)
    expect(cache.size).toBe(1)
  })

  it('never lets a remembered certificate prove another peer', async () => {
    const key = await generateKeyPair('Ed25519')
    const someoneElse = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const der = await certificate(key)
    const cache = new VerifiedCertificates(8)
    await expect(cache.peerOf(der, someoneElse)).rejects.toBeInstanceOf(UnexpectedPeerError) // a miss
    expect(cache.size).toBe(1) // what it proved is remembered, not what was expected
    await expect(cache.peerOf(der, someoneElse)).rejects.toBeInstanceOf(UnexpectedPeerError) // a hit
  })

  it('refuses a tampered certificate and remembers nothing for it', async () => {
    const der = await certificate(await generateKeyPair('Ed25519'))
    const tampered = der.slice()
    // The last byte of the DER is the last of the self-signature's S: the certificate still parses, no longer verifies.
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01
    const cache = new VerifiedCertificates(8)
    await expect(cache.peerOf(tampered)).rejects.toThrow()
    expect(cache.size).toBe(0)
  })

  it('refuses a remembered certificate once past its notAfter', async () => {
    const der = await certificate(await generateKeyPair('Ed25519'))
    const notAfter = new X509Certificate(der).validToDate.getTime()
    let now = Date.now()
    const cache = new VerifiedCertificates(8, () => now)
    await cache.peerOf(der)
    expect(cache.size).toBe(1)
    now = notAfter + 1
    await expect(cache.peerOf(der)).rejects.toThrow(/validity period/)
    expect(cache.size).toBe(0)
  })

  it('is bounded, and remembers nothing when its size is 0', async () => {
    const ders = await Promise.all([1, 2, 3].map(async () => certificate(await generateKeyPair('Ed25519'))))
    const cache = new VerifiedCertificates(2)
    for (const der of ders) await cache.peerOf(der)
    expect(cache.size).toBe(2)
    const none = new VerifiedCertificates(0)
    await none.peerOf(ders[0] as Uint8Array)
    expect(none.size).toBe(0)
    expect(() => new VerifiedCertificates(-1)).toThrow(RangeError)
  })
})
