import { describe, expect, it } from 'vitest'
import { EventQueue } from '../../../bench/sim/queue.ts'

describe('EventQueue', () => {
  it('runs events in time order, ties in the order they were scheduled', () => {
    const q = new EventQueue()
    const seen: string[] = []
    q.at(30, () => seen.push('c'))
    q.at(10, () => seen.push('a1'))
    q.at(20, () => seen.push('b'))
    q.at(10, () => seen.push('a2'))
    q.at(10, () => seen.push('a3'))
    q.run()
    expect(seen).toEqual(['a1', 'a2', 'a3', 'b', 'c'])
    expect(q.now).toBe(30)
    expect(q.ran).toBe(5)
  })

  it('runs many tied events, some scheduled by events, exactly in (time, scheduling order)', () => {
    const q = new EventQueue()
    const ran: number[] = []
    const expected: { at: number; seq: number }[] = []
    let seq = 0
    let x = 777
    const rnd = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31
      return x
    }
    const schedule = (at: number, depth: number) => {
      const id = seq++
      expected.push({ at: Math.max(at, q.now), seq: id })
      q.at(at, () => {
        ran.push(id)
        if (depth < 2 && rnd() % 3 === 0) schedule(q.now + (rnd() % 5), depth + 1)
      })
    }
    for (let i = 0; i < 3000; i++) schedule(rnd() % 50, 0)
    q.run()
    expected.sort((a, b) => a.at - b.at || a.seq - b.seq)
    expect(ran).toEqual(expected.map((e) => e.seq))
  })

  it('runs events scheduled after fixed delays (lanes), at times and by timers exactly in (time, scheduling order)', () => {
    const q = new EventQueue()
    const ran: number[] = []
    const expected: { at: number; seq: number }[] = []
    let seq = 0
    let x = 4242
    const rnd = () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      return x >>> 8
    }
    // More distinct delays than there are lanes, fractional ones, 0 (at once) and a past time among them.
    const delays = [0, 0.5, 1, 2, 2.25, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20.75, 40]
    const schedule = (depth: number) => {
      const id = seq++
      const r = rnd() % 10
      const run = () => {
        ran.push(id)
        const more = rnd() % 4
        for (let k = 0; depth < 6 && k < more; k++) schedule(depth + 1)
      }
      if (r < 7) {
        const delay = delays[rnd() % delays.length]!
        expected.push({ at: q.now + delay, seq: id })
        q.after(delay, run)
      } else if (r < 9) {
        const at = q.now + (rnd() % 30) - 5
        expected.push({ at: Math.max(at, q.now), seq: id })
        q.at(at, run)
      } else {
        const at = q.now + (rnd() % 25)
        expected.push({ at, seq: id })
        q.set(q.timer(run), at)
      }
    }
    for (let i = 0; i < 500; i++) schedule(0)
    q.run()
    expect(ran.length).toBeGreaterThan(2000)
    expect(q.size).toBe(0)
    expected.sort((a, b) => a.at - b.at || a.seq - b.seq)
    expect(ran).toEqual(expected.map((e) => e.seq))
  })

  it('orders many random events and never moves time backwards', () => {
    const q = new EventQueue()
    const times: number[] = []
    let x = 12345
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31
      const t = x % 1000
      q.at(t, () => times.push(q.now))
    }
    q.run()
    expect(times).toHaveLength(2000)
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!)
  })

  it('schedules from inside events relative to virtual time, and stops at endMs', () => {
    const q = new EventQueue()
    const seen: number[] = []
    const tick = () => {
      seen.push(q.now)
      q.after(100, tick)
    }
    q.at(0, tick)
    q.run({ endMs: 350 })
    expect(seen).toEqual([0, 100, 200, 300])
    // An event for a past time runs now, not before.
    q.at(-5, () => seen.push(q.now))
    q.run({ endMs: 350 })
    expect(seen.at(-1)).toBe(300)
  })

  it('runs a moved timer once, where an event scheduled at its last setting would run', () => {
    const q = new EventQueue()
    const seen: string[] = []
    const t = q.timer(() => seen.push(`t@${q.now}`))
    q.set(t, 50)
    q.at(30, () => seen.push('a'))
    q.set(t, 30) // after 'a': set later, same time
    q.at(30, () => seen.push('b'))
    const gone = q.timer(() => seen.push('never'))
    q.set(gone, 10)
    q.clear(gone)
    expect(gone.pending).toBe(false)
    q.run()
    expect(seen).toEqual(['a', 't@30', 'b'])
    expect(q.ran).toBe(3)
    // Many timers moved at random keep the heap in order.
    const order: number[] = []
    const timers = Array.from({ length: 200 }, (_, i) => q.timer(() => order.push(i)))
    let x = 7
    for (let round = 0; round < 5; round++) {
      for (const tm of timers) {
        x = (x * 1103515245 + 12345) % 2 ** 31
        if (x % 7 === 0) q.clear(tm)
        else q.set(tm, 100 + (x % 500))
      }
    }
    const want = timers
      .map((tm, i) => ({ i, at: tm.at, ord: tm.ord, pending: tm.pending }))
      .filter((e) => e.pending)
      .sort((a, b) => a.at - b.at || a.ord - b.ord)
      .map((e) => e.i)
    q.run()
    expect(order).toEqual(want)
  })
})
