import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { type FoundProvider, ProviderLookups } from '../../../agent/swarm/lookups.ts'
import { type Digest, digestOf } from '../../../shared/oci/digest.ts'
import { seededRandom } from '../../../shared/swarm/scheduler/index.ts'

const d = (i: number): Digest => digestOf(new TextEncoder().encode(`blob ${i}`))
const PEERS = [
  '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA',
  '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo',
  '12D3KooWLRPJAA5o6Z6QguV7LobiqXxWbSa3qddCSMg1XPAGdr5F',
].map((id) => ({ id: peerIdFromString(id), multiaddrs: [] }) satisfies FoundProvider)

/** A DHT query the test feeds by hand: push providers, then end it (or let the signal end it). */
class FakeQuery {
  readonly queue: FoundProvider[] = []
  ended = false
  signal: AbortSignal | undefined
  #wake: (() => void) | undefined

  push(p: FoundProvider): void {
    this.queue.push(p)
    this.#wake?.()
  }

  end(): void {
    this.ended = true
    this.#wake?.()
  }

  async *run(signal: AbortSignal): AsyncIterable<FoundProvider> {
    this.signal = signal
    signal.addEventListener('abort', () => this.#wake?.())
    for (;;) {
      while (this.queue.length > 0) yield this.queue.shift()!
      if (this.ended) return
      signal.throwIfAborted()
      await new Promise<void>((resolve) => (this.#wake = resolve))
    }
  }
}

function setup(opts: { timeoutMs?: number; cacheMs?: number } = {}) {
  const queries: FakeQuery[] = []
  let now = 1000
  const firsts: number[] = []
  const lookups = new ProviderLookups({
    find: (_digest, { signal }) => {
      const q = new FakeQuery()
      queries.push(q)
      return q.run(signal)
    },
    timeoutMs: opts.timeoutMs ?? 60_000,
    cacheMs: opts.cacheMs ?? 500,
    onFirst: (ms) => firsts.push(ms),
    now: () => now,
  })
  const collect = (digest: Digest, signal = new AbortController().signal) => {
    const seen: string[] = []
    const done = lookups.lookup(digest, (p) => seen.push(p.id.toString()), { signal })
    return { seen, done }
  }
  return { lookups, queries, collect, firsts, advance: (ms: number) => (now += ms) }
}

const tick = () => new Promise((r) => setImmediate(r))

describe('ProviderLookups', () => {
  it('joins a lookup under way: one query, every caller hears every provider once', async () => {
    const { lookups, queries, collect, firsts } = setup()
    const a = collect(d(1))
    await tick()
    queries[0]!.push(PEERS[0]!)
    queries[0]!.push(PEERS[0]!)
    await tick()
    const b = collect(d(1))
    queries[0]!.push(PEERS[1]!)
    queries[0]!.end()
    await Promise.all([a.done, b.done])
    expect(lookups.started).toBe(1)
    expect(a.seen).toEqual([PEERS[0]!.id.toString(), PEERS[1]!.id.toString()])
    expect(b.seen).toEqual(a.seen)
    expect(firsts).toHaveLength(1)
    // Another blob is another query.
    const c = collect(d(2))
    queries[1]!.end()
    await c.done
    expect(lookups.started).toBe(2)
  })

  it('reuses a finished answer briefly, then asks the DHT again', async () => {
    const { lookups, queries, collect, advance } = setup({ cacheMs: 500 })
    const a = collect(d(1))
    await tick()
    queries[0]!.push(PEERS[2]!)
    queries[0]!.end()
    await a.done
    advance(499)
    const b = collect(d(1))
    await b.done
    expect(b.seen).toEqual([PEERS[2]!.id.toString()])
    expect(lookups.started).toBe(1)
    advance(1)
    const c = collect(d(1))
    await tick()
    expect(lookups.started).toBe(2)
    queries[1]!.end()
    await c.done
    expect(c.seen).toEqual([])
  })

  it('aborts a query everyone left, and does not keep its cut-short answer', async () => {
    const { lookups, queries, collect } = setup()
    const ac1 = new AbortController()
    const ac2 = new AbortController()
    const a = collect(d(1), ac1.signal)
    const b = collect(d(1), ac2.signal)
    await tick()
    queries[0]!.push(PEERS[0]!)
    ac1.abort()
    await a.done
    expect(queries[0]!.signal!.aborted).toBe(false)
    ac2.abort()
    await b.done
    expect(queries[0]!.signal!.aborted).toBe(true)
    const c = collect(d(1))
    await tick()
    expect(lookups.started).toBe(2)
    queries[1]!.end()
    await c.done
  })

  it('cuts a slow query at its timeout and keeps what it found', async () => {
    const { lookups, queries, collect } = setup({ timeoutMs: 20 })
    const a = collect(d(1))
    await tick()
    queries[0]!.push(PEERS[1]!)
    await a.done
    expect(queries[0]!.signal!.aborted).toBe(true)
    expect(a.seen).toEqual([PEERS[1]!.id.toString()])
    const b = collect(d(1))
    await b.done
    expect(b.seen).toEqual(a.seen)
    expect(lookups.started).toBe(1)
  })

  it('keeps a uniform sample of maxProviders of what a lookup hears, not the first ones', async () => {
    const many = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
        return { id, multiaddrs: [] } satisfies FoundProvider
      }),
    )
    const queries: FakeQuery[] = []
    const lookups = new ProviderLookups({
      find: (_digest, { signal }) => {
        const q = new FakeQuery()
        queries.push(q)
        return q.run(signal)
      },
      timeoutMs: 60_000,
      cacheMs: 60_000,
      maxProviders: 8,
      random: seededRandom(3),
    })
    const heard: string[] = []
    const done = lookups.lookup(d(9), (p) => heard.push(p.id.toString()), { signal: new AbortController().signal })
    await tick()
    for (const p of many) queries[0]!.push(p)
    queries[0]!.end()
    await done
    // Each provider entering the sample is passed on; far fewer than all 200.
    expect(heard.length).toBeGreaterThanOrEqual(8)
    expect(heard.length).toBeLessThan(100)
    const kept: string[] = []
    await lookups.lookup(d(9), (p) => kept.push(p.id.toString()), { signal: new AbortController().signal })
    expect(lookups.started).toBe(1)
    expect(kept).toHaveLength(8)
    const order = many.map((p) => p.id.toString())
    expect(Math.max(...kept.map((id) => order.indexOf(id)))).toBeGreaterThanOrEqual(8)
  })
})
