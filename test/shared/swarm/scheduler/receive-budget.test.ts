import { describe, expect, it } from 'vitest'
import { DEFAULT_NODE_INFLIGHT, ReceiveBudget } from '../../../../shared/swarm/scheduler/index.ts'

describe('ReceiveBudget', () => {
  it('gives room up to its maximum, and back as requests end', () => {
    const b = new ReceiveBudget(3)
    expect(b.room()).toBe(3)
    b.take()
    b.take()
    expect(b.room()).toBe(1)
    b.take()
    expect(b.room()).toBe(0)
    b.give()
    expect(b.room()).toBe(1)
    expect(b.used).toBe(2)
    expect(new ReceiveBudget().max).toBe(DEFAULT_NODE_INFLIGHT)
  })

  it('wakes each download that found no room once, when a request ends', () => {
    const b = new ReceiveBudget(1)
    b.take()
    const woken: string[] = []
    expect(b.room(() => woken.push('x'))).toBe(0)
    expect(b.room(() => woken.push('y'))).toBe(0)
    expect(woken).toEqual([])
    b.give()
    expect(woken).toEqual(['x', 'y'])
    b.take()
    b.give()
    // Woken once: a download that wants more asks again.
    expect(woken).toEqual(['x', 'y'])
    // One that found room is not kept.
    expect(b.room(() => woken.push('z'))).toBe(1)
    b.take()
    b.give()
    expect(woken).toEqual(['x', 'y'])
  })

  it('refuses a maximum that is not a positive integer', () => {
    for (const max of [0, -1, 1.5, Number.NaN]) {
      expect(() => new ReceiveBudget(max)).toThrow(expect.objectContaining({ code: 'SCHEDULER_INVALID_OPTIONS' }))
    }
  })
})
