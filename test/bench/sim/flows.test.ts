import { describe, expect, it } from 'vitest'
import { type Flow, FlowNet, Link } from '../../../bench/sim/flows.ts'
import { EventQueue } from '../../../bench/sim/queue.ts'

function setup() {
  const q = new EventQueue()
  return { q, net: new FlowNet(q) }
}

describe('FlowNet (max-min fair fluid flows)', () => {
  it('gives one flow the smaller of its two links', () => {
    const { q, net } = setup()
    const up = new Link('up', 10)
    const down = new Link('down', 4)
    let doneAt = -1
    const f = net.start(up, down, 1000, () => (doneAt = q.now))
    expect(f.rate).toBe(4)
    q.run()
    expect(doneAt).toBe(250)
  })

  it('splits a shared uplink evenly between two flows, and gives the survivor all of it', () => {
    const { q, net } = setup()
    const up = new Link('up', 10)
    const a = new Link('a', 100)
    const b = new Link('b', 100)
    const done: Record<string, number> = {}
    const fa = net.start(up, a, 500, () => (done.a = q.now))
    const fb = net.start(up, b, 1000, () => (done.b = q.now))
    expect(fa.rate).toBe(5)
    expect(fb.rate).toBe(5)
    q.run()
    // a: 500 bytes at 5/ms = 100 ms; b then has 500 left at 10/ms = 50 ms more.
    expect(done.a).toBe(100)
    expect(done.b).toBe(150)
  })

  it('gives a flow limited by its downlink less, and the rest of the uplink to the other flow', () => {
    const { q, net } = setup()
    const up = new Link('up', 10)
    const slow = new Link('slow', 2)
    const fast = new Link('fast', 100)
    const f1 = net.start(up, slow, 1000, () => {})
    const f2 = net.start(up, fast, 1000, () => {})
    expect(f1.rate).toBe(2)
    expect(f2.rate).toBe(8)
    expect(f1.rate + f2.rate).toBeLessThanOrEqual(up.capacity)
    q.run()
  })

  it('settles a chain where one change ripples two links away', () => {
    const { net } = setup()
    // u1 -> d (shared downlink) <- u2; u2 also feeds e. u1 is thin, so d's leftover goes to u2's flow.
    const u1 = new Link('u1', 1)
    const u2 = new Link('u2', 10)
    const d = new Link('d', 6)
    const e = new Link('e', 100)
    const f1 = net.start(u1, d, 1e6, () => {})
    const f2 = net.start(u2, d, 1e6, () => {})
    const f3 = net.start(u2, e, 1e6, () => {})
    expect(f1.rate).toBeCloseTo(1)
    expect(f2.rate).toBeCloseTo(5)
    expect(f3.rate).toBeCloseTo(5)
  })

  it('conserves bytes: what links send equals what they receive, cancelled flows included', () => {
    const { q, net } = setup()
    const ups = [new Link('u0', 3), new Link('u1', 5)]
    const downs = [new Link('d0', 4), new Link('d1', 2), new Link('d2', 7)]
    const flows: Flow[] = []
    for (let i = 0; i < 12; i++) {
      flows.push(net.start(ups[i % 2]!, downs[i % 3]!, 100 + 37 * i, () => {}))
    }
    q.at(20, () => {
      net.cancel(flows[3]!)
      net.cancel(flows[7]!)
    })
    q.run()
    const sent = ups.reduce((n, l) => n + l.bytes, 0)
    const received = downs.reduce((n, l) => n + l.bytes, 0)
    expect(sent).toBeCloseTo(received, 6)
    const full = flows.reduce((n, f) => n + f.bytes, 0)
    expect(sent).toBeLessThan(full)
    expect(net.active).toBe(0)
  })
})
