import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import {
  parsePeerAddr,
  parseSeederAddr,
  peerIdOf,
  rendezvousOrder,
  seederFor,
  seedersFromBootstrap,
  seedersInOrder,
  withoutPeerId,
  withPeerId,
} from '../../../shared/swarm/index.ts'

const A = '12D3KooWBpF5v9wwxuH4GepBKSiLPsU2KznqyXAfnPqnNPWzLKhh'
const B = '12D3KooWPdxMqm4HzsHYm2jyLExeuWLLD64f4c3syn8SkGAeNqcD'
const C = '12D3KooWCr6d344buApfXWG8obvzJ6zEWsQRsujSrMrDaDR91Ube'

describe('seeder addresses', () => {
  it('reads the peer id of a /p2p/ multiaddr, and strips it for the peer store', () => {
    const ref = parsePeerAddr(`/ip4/10.0.0.7/tcp/4001/p2p/${A}`)
    expect(ref?.id).toBe(A)
    expect(ref?.addr.toString()).toBe(`/ip4/10.0.0.7/tcp/4001/p2p/${A}`)
    expect(withoutPeerId(ref!.addr).toString()).toBe('/ip4/10.0.0.7/tcp/4001')
    expect(peerIdOf(multiaddr('/ip4/10.0.0.7/tcp/4001'))).toBeUndefined()
    expect(parsePeerAddr('/ip4/10.0.0.7/tcp/4001')).toBeUndefined()
    expect(parsePeerAddr('not a multiaddr')).toBeUndefined()
    expect(parsePeerAddr('/ip4/300.0.0.1/tcp/1')).toBeUndefined()
  })

  it('takes as --seeder only TCP addresses that name the signing peer', () => {
    for (const ok of [
      `/ip4/10.0.0.7/tcp/4001/p2p/${A}`,
      `/ip6/::1/tcp/4001/p2p/${A}`,
      `/dns4/seeder.shoal/tcp/4001/p2p/${A}`,
      `/dns/seeder/tcp/4001/p2p/${A}`,
    ]) {
      expect(parseSeederAddr(ok)?.id, ok).toBe(A)
    }
    for (const bad of [
      '/ip4/10.0.0.7/tcp/4001',
      `/ip4/10.0.0.7/udp/4001/quic-v1/p2p/${A}`,
      `/ip4/10.0.0.7/tcp/4001/p2p/${A}/extra`,
      `dns:seeder/p2p/${A}`,
      '/ip4/10.0.0.7/tcp/4001/p2p/0OIl',
    ]) {
      expect(parseSeederAddr(bad), bad).toBeUndefined()
    }
  })

  it('finds the other seeders in --bootstrap: entries naming a peer, dns: and malformed ones skipped', () => {
    const found = seedersFromBootstrap([
      `/ip4/10.0.0.7/tcp/4001/p2p/${A}`,
      'dns:seeders.shoal:4001',
      '/ip4/10.0.0.8/tcp/4001',
      '/garbage',
      `/dns4/b.shoal/tcp/4001/p2p/${B}`,
    ])
    expect(found.map((s) => s.id)).toEqual([A, B])
    expect(found[1]!.addr.toString()).toBe(`/dns4/b.shoal/tcp/4001/p2p/${B}`)
  })

  it('appends a peer id to an address that names none', () => {
    expect(withPeerId('/ip4/10.0.0.7/tcp/4001', A)).toBe(`/ip4/10.0.0.7/tcp/4001/p2p/${A}`)
    expect(withPeerId(`/ip4/10.0.0.7/tcp/4001/p2p/${B}`, A)).toBe(`/ip4/10.0.0.7/tcp/4001/p2p/${B}`)
  })

  it('picks and orders seeders by the election rule over their ids', () => {
    const seeders = [A, B, C].map((id) => parseSeederAddr(`/ip4/10.0.0.7/tcp/4001/p2p/${id}`)!)
    for (const digest of ['sha256:00', 'sha256:01', 'sha256:02', 'sha256:03']) {
      const order = rendezvousOrder([A, B, C], digest)
      expect(seedersInOrder(seeders, digest).map((s) => s.id)).toEqual(order)
      expect(seederFor(seeders, digest)?.id).toBe(order[0])
    }
    expect(seederFor([], 'sha256:00')).toBeUndefined()
  })
})
