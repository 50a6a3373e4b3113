import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Bitfield } from '../../../shared/chunks/index.ts'
import { digestOf } from '../../../shared/oci/index.ts'
import { HaveTracker, MAX_TRACKED_PEERS } from '../../../shared/swarm/have-tracker.ts'
import type { HaveResult, PeerTarget } from '../../../shared/swarm/protocol/index.ts'

const digest = digestOf(Buffer.from('have-tracker'))
const geometry = { size: 4 * 1024, chunkSize: 1024 }

/** A `have` client whose answers the test hands out: each call waits until the test answers that peer. */
class ScriptedClient {
  readonly asked: string[] = []
  readonly #waiting = new Map<string, (r: HaveResult) => void>()

  getHave(peer: PeerTarget, _digest: unknown, opts: { signal?: AbortSignal } = {}): Promise<HaveResult | undefined> {
    const id = peer.toString().split('/')[2] ?? ''
    this.asked.push(id)
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, resolve)
      opts.signal?.addEventListener('abort', () => reject(opts.signal?.reason), { once: true })
    })
  }

  answer(id: string, r: HaveResult): void {
    const resolve = this.#waiting.get(id)
    if (resolve === undefined) throw new Error(`${id} is not being asked`)
    this.#waiting.delete(id)
    resolve(r)
  }
}

/** Each test peer is named by the host of its address. */
const at = (id: string): PeerTarget => multiaddr(`/dns4/${id}/tcp/4001`)
const full = (): HaveResult => ({ ...geometry, bitfield: Bitfield.full(4), complete: true })

describe('HaveTracker', () => {
  let ac: AbortController
  beforeEach(() => {
    ac = new AbortController()
  })
  afterEach(() => ac.abort())

  function tracker(maxPeers?: number, site?: string, outsidePauseMs?: number) {
    const client = new ScriptedClient()
    const seen: string[] = []
    const gone: string[] = []
    const t = new HaveTracker({
      client,
      digest,
      geometry,
      signal: ac.signal,
      onHave: (peer) => seen.push(peer),
      onGone: (peer) => gone.push(peer),
      ...(maxPeers === undefined ? {} : { maxPeers }),
      ...(site === undefined ? {} : { site }),
      ...(outsidePauseMs === undefined ? {} : { outsidePauseMs }),
    })
    return { t, client, seen, gone }
  }

  it('follows at most maxPeers peers, and seeders beside them', () => {
    const { t, client } = tracker(2)
    t.track('s1', at('s1'), 'seeder')
    for (const id of ['p1', 'p2', 'p3']) t.track(id, at(id), 'peer')
    t.track('s2', at('s2'), 'seeder')
    expect(t.peerCount).toBe(2)
    expect(client.asked).toEqual(['s1', 'p1', 'p2', 's2'])
    expect(t.knows('p3')).toBe(false)
  })

  it('does not count a member of its own site against maxPeers once it says so', async () => {
    const { t, client, seen } = tracker(2, 'store-1')
    for (const id of ['p1', 'p2', 'p3']) t.track(id, at(id), 'peer')
    expect(t.knows('p3')).toBe(false)
    client.answer('p1', { ...full(), site: 'store-1' })
    client.answer('p2', { ...full(), site: 'store-2' })
    await expect.poll(() => seen).toEqual(['p1', 'p2'])
    expect(t.peerCount).toBe(1)
    t.track('p3', at('p3'), 'peer')
    expect(t.knows('p3')).toBe(true)
    t.track('p4', at('p4'), 'peer')
    expect(t.knows('p4')).toBe(false)
  })

  it('takes a new peer once a followed one leaves', async () => {
    const { t, client, seen, gone } = tracker(2)
    for (const id of ['p1', 'p2', 'p3']) t.track(id, at(id), 'peer')
    client.answer('p1', full())
    await expect.poll(() => seen).toEqual(['p1'])
    // A complete holder keeps its place: it never changes again, but it can serve every chunk.
    t.track('p3', at('p3'), 'peer')
    expect(t.knows('p3')).toBe(false)
    // p2 cut the blob differently: of no use here, so it is let go and its place is free.
    client.answer('p2', { size: geometry.size, chunkSize: 2048, bitfield: Bitfield.full(2), complete: true })
    await expect.poll(() => t.peerCount).toBe(1)
    expect(gone).toEqual([])
    t.track('p3', at('p3'), 'peer')
    expect(t.knows('p3')).toBe(true)
    expect(t.peerCount).toBe(2)
  })

  it('in a site, asks a peer of another site again only a pause after its answer; members and seeders at once', async () => {
    const pauseMs = 300
    const { t, client, seen } = tracker(undefined, 'store-1', pauseMs)
    const half = (site: string): HaveResult => {
      const bitfield = new Bitfield(4)
      bitfield.set(0)
      bitfield.set(1)
      return { ...geometry, bitfield, complete: false, site }
    }
    t.track('member', at('member'), 'peer')
    t.track('relay', at('relay'), 'peer')
    t.track('seeder', at('seeder'), 'seeder')
    const answeredAt = Date.now()
    client.answer('member', half('store-1'))
    client.answer('relay', half('store-2'))
    client.answer('seeder', half('core'))
    await expect.poll(() => seen).toHaveLength(3)
    // The member and the seeder are long-polled again at once; the relay is not, until the pause is over.
    await expect
      .poll(() => client.asked.filter((id) => id !== 'relay'))
      .toEqual(['member', 'seeder', 'member', 'seeder'])
    expect(client.asked.filter((id) => id === 'relay')).toHaveLength(1)
    await expect.poll(() => client.asked.filter((id) => id === 'relay'), { timeout: 5000 }).toHaveLength(2)
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(pauseMs - 5)
  })

  it('without a site, asks every peer again at once', async () => {
    const { t, client, seen } = tracker(undefined, undefined, 300)
    const bitfield = new Bitfield(4)
    bitfield.set(0)
    t.track('p1', at('p1'), 'peer')
    client.answer('p1', { ...geometry, bitfield, complete: false, site: 'store-2' })
    await expect.poll(() => seen).toEqual(['p1'])
    await expect.poll(() => client.asked, { timeout: 200 }).toEqual(['p1', 'p1'])
  })

  it('caps at MAX_TRACKED_PEERS by default, and stop() lets every peer go', () => {
    const { t } = tracker()
    for (let i = 0; i < MAX_TRACKED_PEERS + 10; i++) t.track(`p${i}`, at(`p${i}`), 'peer')
    expect(t.peerCount).toBe(MAX_TRACKED_PEERS)
    t.stop()
    expect(t.peerCount).toBe(0)
    t.track('again', at('again'), 'peer')
    expect(t.knows('again')).toBe(true)
  })
})
