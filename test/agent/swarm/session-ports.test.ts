import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { type FoundProvider, ProviderLookups } from '../../../agent/swarm/lookups.ts'
import { MAX_LOOKUP_INTERVAL_MS, SwarmHolders } from '../../../agent/swarm/session-ports.ts'
import { digestOf } from '../../../shared/oci/digest.ts'
import type { P2PNode } from '../../../shared/p2p/index.ts'
import type { ChunkClient } from '../../../shared/swarm/protocol/index.ts'

const digest = digestOf(new TextEncoder().encode('blob'))
const stops: AbortController[] = []
afterEach(() => {
  for (const ac of stops.splice(0)) ac.abort()
})

async function provider(): Promise<FoundProvider> {
  return { id: peerIdFromPrivateKey(await generateKeyPair('Ed25519')), multiaddrs: [] }
}

/** Holders over a DHT whose answer the test sets, a clock it moves, and peers whose long polls never answer. */
async function setup(): Promise<{
  holders: SwarmHolders
  answer: FoundProvider[]
  queries: () => number
  tick: (ms: number) => Promise<void>
  gone: (id: string) => void
}> {
  let t = 0
  let queries = 0
  const answer: FoundProvider[] = []
  const lookups = new ProviderLookups({
    timeoutMs: 1000,
    cacheMs: 0,
    now: () => t,
    find: async function* () {
      queries++
      yield* answer
    },
  })
  const polls = new Map<string, (err: Error) => void>()
  const client = {
    getHave: (peer: { toString(): string }, _d: unknown, opts: { signal: AbortSignal }) =>
      new Promise((_resolve, reject) => {
        polls.set(peer.toString(), reject)
        opts.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })
      }),
  } as unknown as ChunkClient
  const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const holders = new SwarmHolders({
    node: { peerId: self } as unknown as P2PNode,
    client,
    digest,
    geometry: { size: 4096, chunkSize: 1024 },
    seeders: [],
    trusted: new Set(),
    interested: () => [],
    lookups,
    now: () => t,
  })
  const ac = new AbortController()
  stops.push(ac)
  const sink = { addPeer: () => {}, peerHas: () => {}, removePeer: () => {} }
  holders.follow(sink, ac.signal)
  const tick = async (ms: number): Promise<void> => {
    t += ms
    holders.discover(ac.signal)
    await new Promise((resolve) => setImmediate(resolve))
  }
  // A long poll failing three times ends the peer's loop: the tracker reports it gone.
  const gone = (id: string): void => polls.get(id)?.(new Error('reset'))
  return { holders, answer, queries: () => queries, tick, gone }
}

describe('SwarmHolders.discover', () => {
  it('looks up providers every second while lookups bring new holders, and backs off to the cap when not', async () => {
    const s = await setup()
    s.answer.push(await provider())
    await s.tick(0)
    expect(s.queries()).toBe(1)
    s.answer.push(await provider())
    await s.tick(1000)
    expect(s.queries()).toBe(2) // the last one found someone new: every second still
    // Nothing new from here on: after 2 s, then 4 s, then every MAX_LOOKUP_INTERVAL_MS.
    const at: number[] = []
    for (let t = 2000; t <= 20_000; t += 1000) {
      const before = s.queries()
      await s.tick(1000)
      if (s.queries() > before) at.push(t)
    }
    expect(at).toEqual([2000, 4000, 8000, 12_000, 16_000, 20_000])
    expect(MAX_LOOKUP_INTERVAL_MS).toBe(4000)
  })

  it('looks again at the next tick after a new holder appears in an answer the backoff skipped', async () => {
    const s = await setup()
    await s.tick(0)
    await s.tick(1000) // skipped: backing off
    await s.tick(1000)
    expect(s.queries()).toBe(2)
    s.answer.push(await provider())
    await s.tick(4000)
    expect(s.queries()).toBe(3)
    await s.tick(1000)
    expect(s.queries()).toBe(4)
    expect(s.holders.lookups).toBe(4)
  })
})
