import { describe, expect, it } from 'vitest'
import { UPLOAD_CONTENTION_MS, UploadSlots } from '../../../../shared/swarm/serve/index.ts'

function slots(max: number) {
  const clock = { t: 0 }
  return { clock, s: new UploadSlots(max, { now: () => clock.t }) }
}

describe('UploadSlots', () => {
  it('gives a lone peer every slot, then refuses, and frees a slot once per release', () => {
    const { s } = slots(3)
    const r = [s.tryAcquire('a'), s.tryAcquire('a'), s.tryAcquire('a')]
    expect(r.every((x) => x !== undefined)).toBe(true)
    expect(s.tryAcquire('a')).toBeUndefined()
    r[0]!()
    r[0]!()
    expect(s.used).toBe(2)
    expect(s.tryAcquire('a')).toBeDefined()
  })

  it('while another peer waits, a peer holding a slot gets no second one', () => {
    const { clock, s } = slots(3)
    const a1 = s.tryAcquire('a')!
    s.tryAcquire('a')
    s.tryAcquire('a')
    expect(s.tryAcquire('b')).toBeUndefined() // full: b is now waiting
    a1()
    expect(s.tryAcquire('a')).toBeUndefined() // the freed slot is kept for b
    expect(s.tryAcquire('b')).toBeDefined()
    expect(s.tryAcquire('c')).toBeUndefined()
    clock.t += 10
    // b holds one and c waits: b gets no second slot either.
    expect(s.used).toBe(3)
  })

  it('spreads the slots over distinct waiting peers', () => {
    const { s } = slots(3)
    const held = [s.tryAcquire('a')!, s.tryAcquire('a')!, s.tryAcquire('a')!]
    for (const p of ['b', 'c']) expect(s.tryAcquire(p)).toBeUndefined()
    for (const r of held) r()
    expect(s.tryAcquire('a')).toBeDefined()
    expect(s.tryAcquire('a')).toBeUndefined()
    expect(s.tryAcquire('b')).toBeDefined()
    expect(s.tryAcquire('b')).toBeUndefined()
    expect(s.tryAcquire('c')).toBeDefined()
  })

  it('forgets a waiting peer after the contention window, so a lone peer fills the slots again', () => {
    const { clock, s } = slots(2)
    const a = s.tryAcquire('a')!
    s.tryAcquire('a')
    expect(s.tryAcquire('b')).toBeUndefined()
    a()
    clock.t += UPLOAD_CONTENTION_MS - 1
    expect(s.tryAcquire('a')).toBeUndefined()
    clock.t += 1
    expect(s.tryAcquire('a')).toBeDefined()
  })

  it('hands a freed slot to a waiting request, receivers holding none first, and drops a cancelled wait', () => {
    const { s } = slots(2)
    const a1 = s.tryAcquire('a')!
    const b1 = s.tryAcquire('b')!
    const got: string[] = []
    const releases: (() => void)[] = []
    const take = (id: string) => (release: () => void) => {
      got.push(id)
      releases.push(release)
    }
    expect(s.tryAcquire('a')).toBeUndefined()
    const waitA = s.wait('a', take('a'))!
    expect(s.tryAcquire('c')).toBeUndefined()
    const waitC = s.wait('c', take('c'))!
    expect(s.wait('d', take('d'))).toBeUndefined() // the queue (one per slot) is full
    expect(s.queued).toBe(2)
    b1()
    // a holds a slot, c none: c goes first although a waited longer.
    expect(got).toEqual(['c'])
    expect(waitC()).toBe(false)
    expect(s.used).toBe(2)
    expect(waitA()).toBe(true) // still waiting: dropped, answer busy
    a1()
    expect(got).toEqual(['c'])
    expect(s.used).toBe(1)
    releases[0]!()
    expect(s.used).toBe(0)
  })

  it('with no queue, a refused request cannot wait', () => {
    const clock = { t: 0 }
    const s = new UploadSlots(1, { now: () => clock.t, queue: 0 })
    s.tryAcquire('a')
    expect(s.wait('b', () => {})).toBeUndefined()
  })
})
