import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FoundProvider, ProviderLookups } from '../../../agent/swarm/lookups.ts'
import { SwarmHolders } from '../../../agent/swarm/session-ports.ts'
import { FIRST_LOOKUP_BACKOFF_MS, MAX_LOOKUP_INTERVAL_MS } from '../../../shared/swarm/lookup-pacer.ts'
import { sessionSite } from '../../../agent/swarm/swarm.ts'
import { Bitfield } from '../../../shared/chunks/index.ts'
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
    /** What every DHT query finds (nothing unless the test adds providers); each query counted. */
    const answer: FoundProvider[] = []
    const lookups = new ProviderLookups({
      find: () => {
        queries++
        return (async function* () {
          yield* [...answer]
        })()
      },
      timeoutMs: 1000,
      cacheMs: 0,
      now: () => clock.t,
    })
    const seederRefs = Array.from({ length: seeders }, () => ({
      id: seeder.toString(),
      addr: multiaddr(`/ip4/10.0.0.1/tcp/4001/p2p/${seeder.toString()}`),
    }))
    // The seeder's `have` long poll never answers; a provider answers its first one (it holds nothing yet), then
    // holds the next open until the test makes it fail (`lose`), which ends its loop: the tracker reports it gone.
    const lost = new Set<string>()
    const asked = new Set<string>()
    const pending = new Map<string, (err: Error) => void>()
    const getHave = (peer: { toString(): string }) => {
      const id = peer.toString()
      if (lost.has(id)) return Promise.reject(new Error('connection reset'))
      if (id === seeder.toString()) return new Promise(() => {})
      if (asked.has(id)) return new Promise((_resolve, reject) => pending.set(id, reject))
      asked.add(id)
      return Promise.resolve({ ...geometry, bitfield: new Bitfield(4), complete: false })
    }
    const lose = (id: string): void => {
      lost.add(id)
      pending.get(id)?.(new Error('connection reset'))
    }
    const h = new SwarmHolders({
      node: { peerId: self } as unknown as P2PNode,
      client: { getHave } as unknown as ChunkClient,
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
    const provider = async (): Promise<string> => {
      const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      answer.push({ id, multiaddrs: [] })
      return id.toString()
    }
    return { discover, provider, lose, queries: () => queries }
  }

  it('in a site, following a seeder, looks the blob up in the DHT SITE_LOOKUP_MS apart', async () => {
    const { discover } = await holders('store-1', 1)
    const seconds = (3 * SITE_LOOKUP_MS) / 1000
    expect(await discover(seconds)).toBe(3)
  })

  it('without a site, with or without a seeder, backs off while lookups find nobody new: 2 s, then 4 s apart', async () => {
    expect([FIRST_LOOKUP_BACKOFF_MS, MAX_LOOKUP_INTERVAL_MS]).toEqual([2000, 4000])
    for (const seeders of [1, 0]) {
      const { discover } = await holders(undefined, seeders)
      // Seconds 0, 2, 6, 10, 14 and 18 of 20.
      expect(await discover(20)).toBe(6)
    }
  })

  it('in a site with no seeder, looks every second: its members meet only through the DHT', async () => {
    const { discover } = await holders('store-1', 0)
    expect(await discover(10)).toBe(10)
  })

  it('looks every second while lookups bring new holders, and at once again after one brings a new holder', async () => {
    const { discover, provider, queries } = await holders(undefined, 1)
    await provider()
    await discover(1) // second 0: a new holder
    await provider()
    await discover(1) // second 1: another
    expect(queries()).toBe(2)
    await discover(1) // second 2: nobody new from here
    expect(queries()).toBe(3)
    await discover(4) // seconds 3..6: the next lookup at second 4, then at 8
    expect(queries()).toBe(4)
    await provider()
    await discover(2) // seconds 7, 8: the lookup at 8 finds the new one
    expect(queries()).toBe(5)
    await discover(1) // second 9: so it looks again at once
    expect(queries()).toBe(6)
  })

  it('looks again at the next rediscovery once a followed holder is lost', async () => {
    const { discover, provider, lose, queries } = await holders(undefined, 1)
    const id = await provider()
    await discover(2) // seconds 0 (a new holder) and 1 (nobody new: the next lookup at second 3)
    expect(queries()).toBe(2)
    lose(id)
    // Its loop gives up after three failed asks (a quarter and half a second apart, real time).
    await new Promise((r) => setTimeout(r, 1500))
    await discover(1) // second 2: within the backoff, but a holder was lost
    expect(queries()).toBe(3)
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
