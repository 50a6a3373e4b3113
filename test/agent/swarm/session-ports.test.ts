import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ProviderLookups } from '../../../agent/swarm/lookups.ts'
import { SwarmHolders } from '../../../agent/swarm/session-ports.ts'
import { sessionSite } from '../../../agent/swarm/swarm.ts'
import { digestOf } from '../../../shared/oci/digest.ts'
import type { P2PNode } from '../../../shared/p2p/index.ts'
import type { ChunkClient } from '../../../shared/swarm/protocol/index.ts'
import type { HaveSink } from '../../../shared/swarm/session/index.ts'
import { SITE_LOOKUP_MS, SITE_SMALL_BLOB_BYTES } from '../../../shared/swarm/sites.ts'

const digest = digestOf(new TextEncoder().encode('session-ports'))
const geometry = { size: 4 * 1024 * 1024, chunkSize: 1024 * 1024 }

describe('SwarmHolders rediscovery', () => {
  let ac: AbortController
  beforeEach(() => {
    ac = new AbortController()
  })
  afterEach(() => ac.abort())

  async function holders(site: string | undefined, seeders: number) {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const seeder = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const clock = { t: 1_000_000 }
    let queries = 0
    const lookups = new ProviderLookups({
      // A DHT query that finds nothing and ends at once; each one counted.
      find: () => {
        queries++
        return (async function* () {})()
      },
      timeoutMs: 1000,
      cacheMs: 0,
      now: () => clock.t,
    })
    const seederRefs = Array.from({ length: seeders }, () => ({
      id: seeder.toString(),
      addr: multiaddr(`/ip4/10.0.0.1/tcp/4001/p2p/${seeder.toString()}`),
    }))
    const h = new SwarmHolders({
      node: { peerId: self } as unknown as P2PNode,
      // The seeder's `have` long poll never answers here: only the lookups are looked at.
      client: { getHave: () => new Promise(() => {}) } as unknown as ChunkClient,
      digest,
      geometry,
      seeders: seederRefs,
      trusted: new Set(seederRefs.map((s) => s.id)),
      interested: () => [],
      lookups,
      ...(site === undefined ? {} : { site }),
      now: () => clock.t,
    })
    h.follow({ addPeer: () => {}, peerHas: () => {}, removePeer: () => {} } as unknown as HaveSink, ac.signal)
    /** One rediscovery per simulated second for `seconds`; the number of DHT queries made. */
    const discover = async (seconds: number) => {
      for (let i = 0; i < seconds; i++) {
        h.discover(ac.signal)
        await new Promise((r) => setImmediate(r))
        clock.t += 1000
      }
      return queries
    }
    return { discover }
  }

  it('in a site, following a seeder, looks the blob up in the DHT SITE_LOOKUP_MS apart', async () => {
    const { discover } = await holders('store-1', 1)
    const seconds = (3 * SITE_LOOKUP_MS) / 1000
    expect(await discover(seconds)).toBe(3)
  })

  it('looks the blob up at every rediscovery without a site, or in a site with no seeder', async () => {
    for (const [site, seeders] of [
      [undefined, 1],
      ['store-1', 0],
    ] as const) {
      const { discover } = await holders(site, seeders)
      expect(await discover(10)).toBe(10)
    }
  })
})

describe('sessionSite', () => {
  it('gives the session its site, except for a small blob and without a site', () => {
    expect(sessionSite('store-1', 'me', digest, SITE_SMALL_BLOB_BYTES + 1)).toEqual({
      site: { name: 'store-1', self: 'me', blob: digest },
    })
    expect(sessionSite('store-1', 'me', digest, 949)).toEqual({})
    expect(sessionSite('store-1', 'me', digest, SITE_SMALL_BLOB_BYTES)).toEqual({})
    expect(sessionSite(undefined, 'me', digest, 8 * 1024 * 1024)).toEqual({})
  })
})
