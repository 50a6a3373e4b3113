import { describe, expect, it } from 'vitest'
import { type Digest, digestOf } from '../../../shared/oci/digest.ts'
import { Announcer, type ProviderRouting } from '../../../agent/swarm/provider.ts'

const d = (i: number): Digest => digestOf(new TextEncoder().encode(`blob ${i}`))

/** A DHT whose provides finish when the test says so, recording what happened in order. */
class FakeRouting implements ProviderRouting {
  readonly events: string[] = []
  readonly calls = new Map<Digest, number>()
  /** Peers each provide reaches, per call (default 1). */
  reach: (digest: Digest, call: number) => number = () => 1
  hold = false
  #held: (() => void)[] = []
  inflight = 0
  maxInflight = 0
  signals: AbortSignal[] = []

  async provide(digest: Digest, { signal }: { signal: AbortSignal }): Promise<number> {
    const n = (this.calls.get(digest) ?? 0) + 1
    this.calls.set(digest, n)
    this.signals.push(signal)
    this.events.push(`provide ${digest.slice(-4)}`)
    this.inflight++
    this.maxInflight = Math.max(this.maxInflight, this.inflight)
    try {
      if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve))
      else await new Promise((resolve) => setImmediate(resolve))
      signal.throwIfAborted()
      return this.reach(digest, n)
    } finally {
      this.inflight--
      this.events.push(`provided ${digest.slice(-4)}`)
    }
  }

  async unprovide(digest: Digest): Promise<void> {
    this.events.push(`unprovide ${digest.slice(-4)}`)
  }

  release(): void {
    this.hold = false
    for (const r of this.#held.splice(0)) r()
  }

  /** Resolves once `n` provides are waiting on `release`. */
  async held(n: number): Promise<void> {
    while (this.#held.length < n) await new Promise((r) => setImmediate(r))
  }
}

describe('Announcer', () => {
  it('provides a blob once however often it is announced', async () => {
    const routing = new FakeRouting()
    const a = new Announcer({ routing })
    a.announce(d(1))
    a.announce(d(1))
    await a.idle()
    a.announce(d(1))
    await a.idle()
    expect(routing.calls.get(d(1))).toBe(1)
    expect(a.state(d(1))).toBe('provided')
  })

  it('on withdrawal aborts a provide in flight, then removes the record it wrote', async () => {
    const routing = new FakeRouting()
    routing.hold = true
    const a = new Announcer({ routing })
    a.announce(d(1))
    await routing.held(1)
    a.withdraw(d(1))
    expect(routing.signals[0]!.aborted).toBe(true)
    // The DHT writes the local record when a provide starts: removing it before the provide ends would lose.
    expect(routing.events).toEqual([`provide ${d(1).slice(-4)}`])
    routing.release()
    await a.idle()
    expect(routing.events).toEqual([
      `provide ${d(1).slice(-4)}`,
      `provided ${d(1).slice(-4)}`,
      `unprovide ${d(1).slice(-4)}`,
    ])
    expect(a.state(d(1))).toBeUndefined()
  })

  it('withdraws a provided blob, and provides it again when it comes back', async () => {
    const routing = new FakeRouting()
    const a = new Announcer({ routing })
    a.announce(d(1))
    await a.idle()
    a.withdraw(d(1))
    a.withdraw(d(1))
    // Downloaded again while the withdrawal runs.
    a.announce(d(1))
    await a.idle()
    expect(routing.events.map((e) => e.split(' ')[0])).toEqual([
      'provide',
      'provided',
      'unprovide',
      'provide',
      'provided',
    ])
    expect(a.state(d(1))).toBe('provided')
    a.withdraw(d(2))
    await a.idle()
    expect(routing.events.filter((e) => e.startsWith('unprovide'))).toHaveLength(1)
  })

  it('drops a queued announcement on withdrawal without touching the DHT', async () => {
    const routing = new FakeRouting()
    routing.hold = true
    const a = new Announcer({ routing, concurrency: 1 })
    a.announce(d(1))
    a.announce(d(2))
    await routing.held(1)
    expect(a.state(d(2))).toBe('queued')
    a.withdraw(d(2))
    routing.release()
    await a.idle()
    expect(routing.calls.get(d(2))).toBeUndefined()
    expect(routing.events.some((e) => e.endsWith(d(2).slice(-4)))).toBe(false)
  })

  it('announces a full cache at start-up a few at a time', async () => {
    const routing = new FakeRouting()
    const a = new Announcer({ routing, concurrency: 3 })
    const all = Array.from({ length: 20 }, (_, i) => d(i))
    a.announceAll(all)
    await a.idle()
    expect(routing.maxInflight).toBe(3)
    for (const x of all) expect(a.state(x)).toBe('provided')
    expect([...routing.calls.values()].every((n) => n === 1)).toBe(true)
  })

  it('tries again when a provide reached no peer, then leaves it to the reprovider', async () => {
    const routing = new FakeRouting()
    routing.reach = (digest, call) => (digest === d(1) && call >= 2 ? 1 : 0)
    const a = new Announcer({ routing, retryDelaysMs: [1, 1, 1] })
    a.announce(d(1))
    a.announce(d(2))
    await a.idle()
    expect(routing.calls.get(d(1))).toBe(2)
    expect(routing.calls.get(d(2))).toBe(4)
    expect(a.state(d(2))).toBe('provided')
  })

  it('a withdrawal cancels a retry that is waiting', async () => {
    const routing = new FakeRouting()
    routing.reach = () => 0
    const a = new Announcer({ routing, retryDelaysMs: [60_000] })
    a.announce(d(1))
    while (a.state(d(1)) !== 'waiting') await new Promise((r) => setImmediate(r))
    a.withdraw(d(1))
    await a.idle()
    expect(routing.calls.get(d(1))).toBe(1)
    expect(routing.events.at(-1)).toBe(`unprovide ${d(1).slice(-4)}`)
  })

  it('survives a provide that throws', async () => {
    const routing = new FakeRouting()
    routing.reach = () => {
      throw new Error('no route')
    }
    const a = new Announcer({ routing, retryDelaysMs: [] })
    a.announce(d(1))
    await a.idle()
    expect(a.state(d(1))).toBe('provided')
  })

  it('stop aborts what is in flight and announces nothing more', async () => {
    const routing = new FakeRouting()
    routing.hold = true
    const a = new Announcer({ routing, concurrency: 1 })
    a.announce(d(1))
    a.announce(d(2))
    await routing.held(1)
    const stopped = a.stop()
    expect(routing.signals[0]!.aborted).toBe(true)
    routing.release()
    await stopped
    a.announce(d(3))
    await a.idle()
    expect([...routing.calls.keys()]).toEqual([d(1)])
  })
})
