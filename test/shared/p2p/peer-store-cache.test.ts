import type { AbortOptions, Peer, PeerData, PeerId, PeerStore } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { cachePeerStore } from '../../../shared/p2p/peer-store-cache.ts'

/** A peer store that keeps records in a map, merges like libp2p's (union of protocols and addresses), counts calls. */
class FakeStore {
  readonly records = new Map<string, Peer>()
  loads = 0
  writes = 0
  /** When set, the next load waits for it before reading. */
  gate: Promise<void> | undefined

  async get(id: PeerId, options?: AbortOptions): Promise<Peer> {
    options?.signal?.throwIfAborted()
    this.loads++
    const gate = this.gate
    this.gate = undefined
    const rec = this.records.get(id.toString())
    await gate
    if (rec === undefined) throw Object.assign(new Error('not found'), { name: 'NotFoundError' })
    return rec
  }
  async getInfo(id: PeerId): Promise<{ id: PeerId; multiaddrs: never[] }> {
    await this.get(id)
    return { id, multiaddrs: [] }
  }
  async has(id: PeerId): Promise<boolean> {
    return this.records.has(id.toString())
  }
  async merge(id: PeerId, data: PeerData): Promise<Peer> {
    const old = this.records.get(id.toString())
    const addrs = new Map((old?.addresses ?? []).map((a) => [a.multiaddr.toString(), a]))
    for (const ma of data.multiaddrs ?? []) {
      const s = ma.toString().replace(`/p2p/${id.toString()}`, '')
      if (!addrs.has(s)) addrs.set(s, { multiaddr: multiaddr(s), isCertified: false })
    }
    const protocols = [...new Set([...(old?.protocols ?? []), ...(data.protocols ?? [])])].sort()
    return this.#put(id, { addresses: [...addrs.values()], protocols })
  }
  async patch(id: PeerId, data: PeerData): Promise<Peer> {
    const old = this.records.get(id.toString())
    return this.#put(id, {
      addresses: data.multiaddrs?.map((m) => ({ multiaddr: m, isCertified: false })) ?? old?.addresses ?? [],
      protocols: data.protocols ?? old?.protocols ?? [],
    })
  }
  async save(id: PeerId, data: PeerData): Promise<Peer> {
    return this.patch(id, data)
  }
  /** When set, the next delete waits for it before removing the record (a write queued behind a read). */
  deleteGate: Promise<void> | undefined

  async delete(id: PeerId): Promise<void> {
    const gate = this.deleteGate
    this.deleteGate = undefined
    await gate
    this.writes++
    this.records.delete(id.toString())
  }
  async consumePeerRecord(): Promise<boolean> {
    this.writes++
    return false
  }
  #put(id: PeerId, p: Pick<Peer, 'addresses' | 'protocols'>): Peer {
    this.writes++
    const peer = { id, metadata: new Map(), tags: new Map(), ...p } as Peer
    this.records.set(id.toString(), peer)
    return peer
  }
}

async function peer(): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

function setup(now: () => number = Date.now): {
  store: PeerStore
  fake: FakeStore
  stats: ReturnType<typeof cachePeerStore>
} {
  const fake = new FakeStore()
  const store = fake as unknown as PeerStore
  const stats = cachePeerStore(store, { ttlMs: 1000, now })
  return { store, fake, stats }
}

describe('cachePeerStore', () => {
  it('answers repeated reads from memory and a merge of what the record lists without a write', async () => {
    const { store, fake, stats } = setup()
    const id = await peer()
    await store.merge(id, { protocols: ['/a/1'], multiaddrs: [multiaddr('/ip4/10.0.0.1/tcp/4001')] })
    expect(fake.writes).toBe(1)
    for (let i = 0; i < 5; i++) expect((await store.get(id)).protocols).toEqual(['/a/1'])
    expect(fake.loads).toBe(0) // the merge's own result was kept
    // What every stream does (libp2p's connection.js), and what every provider lookup does with the addresses:
    await store.merge(id, { protocols: ['/a/1'] })
    await store.merge(id, { multiaddrs: [multiaddr(`/ip4/10.0.0.1/tcp/4001/p2p/${id.toString()}`)] })
    expect(fake.writes).toBe(1)
    expect(stats.mergesSkipped).toBe(2)
    expect(stats.readHits).toBe(5)
    expect(await store.has(id)).toBe(true)
    expect((await store.getInfo(id)).multiaddrs.map(String)).toEqual(['/ip4/10.0.0.1/tcp/4001'])
  })

  it('passes on a merge that adds a protocol or an address, and reads see it at once', async () => {
    const { store, fake } = setup()
    const id = await peer()
    await store.merge(id, { protocols: ['/a/1'] })
    await store.merge(id, { protocols: ['/b/1'] })
    expect((await store.get(id)).protocols).toEqual(['/a/1', '/b/1'])
    await store.merge(id, { multiaddrs: [multiaddr('/ip4/10.0.0.2/tcp/4001')] })
    expect((await store.get(id)).addresses.map((a) => a.multiaddr.toString())).toEqual(['/ip4/10.0.0.2/tcp/4001'])
    await store.merge(id, { protocols: ['/a/1'], tags: { keep: { value: 1 } } }) // another field: always written
    expect(fake.writes).toBe(4)
  })

  it('drops a record on patch, save and delete, so no read sees what the store no longer holds', async () => {
    const { store, fake } = setup()
    const id = await peer()
    await store.merge(id, { protocols: ['/a/1', '/b/1'] })
    await store.patch(id, { protocols: ['/b/1'] })
    expect((await store.get(id)).protocols).toEqual(['/b/1'])
    await store.merge(id, { protocols: ['/a/1'] }) // no longer listed: written
    expect(fake.writes).toBe(3)
    await store.save(id, { protocols: [] })
    expect((await store.get(id)).protocols).toEqual([])
    await store.delete(id)
    await expect(store.get(id)).rejects.toMatchObject({ name: 'NotFoundError' })
    expect(await store.has(id)).toBe(false)
  })

  it('reads the store again once a record is older than the cache time, and a merge then writes', async () => {
    let t = 0
    const { store, fake, stats } = setup(() => t)
    const id = await peer()
    await store.merge(id, { protocols: ['/a/1'] })
    await store.get(id)
    expect(fake.loads).toBe(0)
    t = 1000
    await store.get(id)
    expect(fake.loads).toBe(1)
    expect(stats.readMisses).toBe(1)
    t = 2000
    await store.merge(id, { protocols: ['/a/1'] })
    expect(fake.writes).toBe(2) // the store's update time is refreshed at least once per cache time
  })

  it('does not keep a read that raced a write', async () => {
    const { store, fake } = setup()
    const id = await peer()
    fake.records.set(id.toString(), { id, addresses: [], protocols: ['/old/1'], metadata: new Map(), tags: new Map() })
    let open!: () => void
    fake.gate = new Promise<void>((r) => (open = r))
    const slow = store.get(id) // loads the old record, then waits
    await Promise.resolve()
    await store.patch(id, { protocols: ['/new/1'] })
    open()
    expect((await slow).protocols).toEqual(['/old/1'])
    expect((await store.get(id)).protocols).toEqual(['/new/1'])
  })

  it('does not keep a read that reached the store ahead of a write begun before it', async () => {
    const { store, fake } = setup()
    const id = await peer()
    fake.records.set(id.toString(), { id, addresses: [], protocols: ['/old/1'], metadata: new Map(), tags: new Map() })
    let open!: () => void
    fake.deleteGate = new Promise<void>((r) => (open = r))
    const deleted = store.delete(id) // begun, but the store serves the read below first
    expect((await store.get(id)).protocols).toEqual(['/old/1'])
    open()
    await deleted
    await expect(store.get(id)).rejects.toMatchObject({ name: 'NotFoundError' })
  })

  it('forgets everything around consumePeerRecord, whose peer is only known inside the store', async () => {
    const { store, fake } = setup()
    const id = await peer()
    await store.merge(id, { protocols: ['/a/1'] })
    await store.consumePeerRecord(new Uint8Array(), { expectedPeer: id })
    await store.get(id)
    expect(fake.loads).toBe(1)
  })

  it('honours an aborted signal on a cached answer', async () => {
    const { store } = setup()
    const id = await peer()
    await store.merge(id, { protocols: ['/a/1'] })
    const signal = AbortSignal.abort()
    await expect(store.get(id, { signal })).rejects.toMatchObject({ name: 'AbortError' })
    await expect(store.merge(id, { protocols: ['/a/1'] }, { signal })).rejects.toMatchObject({ name: 'AbortError' })
  })
})
