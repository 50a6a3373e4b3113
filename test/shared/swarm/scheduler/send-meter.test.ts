import { describe, expect, it } from 'vitest'
import { SchedulerError, SendMeter } from '../../../../shared/swarm/scheduler/index.ts'

const MIB = 1 << 20

/** One upload of a MiB that takes `ms`, begun at `at`. */
function upload(m: SendMeter, at: number, ms: number): void {
  m.begin(at)
  m.end(at, MIB, at + ms)
}

describe('SendMeter', () => {
  it('has no room before it has measured an upload', () => {
    expect(new SendMeter(8).room(0)).toBe(false)
  })

  it('has room while its uploads in flight at their typical rate leave a slot at the best rate', () => {
    const m = new SendMeter(4)
    upload(m, 0, 100) // 10 MiB/s at best and typically
    expect(m.fastestRate).toBeCloseTo(10 * MIB, -3)
    for (let i = 0; i < 2; i++) m.begin(200)
    expect(m.inflight).toBe(2)
    expect(m.room(200)).toBe(true) // 2 × 10 + 10 ≤ 4 × 10
    m.begin(200)
    expect(m.room(200)).toBe(true) // 3 × 10 + 10 ≤ 40
    m.begin(200)
    expect(m.room(200)).toBe(false) // 4 × 10 + 10 > 40
  })

  it('forgets a fast upload after a while: uploads sharing a full uplink leave no room beside them', () => {
    const m = new SendMeter(4, 2000, 5000)
    upload(m, 0, 100)
    // Four uploads at a time, each at a quarter of the first one's rate, for longer than the fastest span.
    for (let t = 1000; t < 7000; t += 400) {
      for (let i = 0; i < 4; i++) m.begin(t)
      for (let i = 0; i < 4; i++) m.end(t, MIB, t + 400)
    }
    expect(m.fastestRate).toBeCloseTo(2.5 * MIB, -3)
    for (let i = 0; i < 2; i++) m.begin(7000)
    expect(m.room(7000)).toBe(true) // 2 × 2.5 + 2.5 ≤ 4 × 2.5
    m.begin(7000)
    m.begin(7000)
    expect(m.room(7000)).toBe(false) // 4 × 2.5 + 2.5 > 4 × 2.5
  })

  it('still remembers a recent fast upload: slow receivers leave room', () => {
    const m = new SendMeter(4, 2000, 5000)
    upload(m, 0, 100)
    for (let i = 0; i < 4; i++) m.begin(1000)
    for (let i = 0; i < 4; i++) m.end(1000, MIB, 1400)
    for (let i = 0; i < 4; i++) m.begin(1400)
    expect(m.room(1400)).toBe(true) // 4 × ~5.6 + 10 ≤ 4 × 10
  })

  it('has no room while a fresh chunk waits for the uplink', () => {
    const m = new SendMeter(8)
    upload(m, 0, 100)
    m.fresh(1)
    expect(m.room(200)).toBe(false)
    m.fresh(-1)
    expect(m.room(200)).toBe(true)
  })

  it('counts promised uploads until they begin or a window passes', () => {
    const m = new SendMeter(2, 1000)
    upload(m, 0, 100)
    expect(m.room(100)).toBe(true)
    m.promise(100)
    expect(m.room(100)).toBe(true) // 1 × 10 + 10 ≤ 2 × 10
    m.promise(100)
    expect(m.room(100)).toBe(false)
    m.settle()
    expect(m.room(100)).toBe(true)
    m.promise(100)
    expect(m.room(1099)).toBe(false)
    expect(m.room(1100)).toBe(true)
  })

  it('forgets a cancelled upload without counting its rate', () => {
    const m = new SendMeter(2)
    upload(m, 0, 100)
    m.begin(200)
    m.end(200, 0, 5000)
    expect(m.inflight).toBe(0)
    expect(m.fastestRate).toBeCloseTo(10 * MIB, -3)
  })

  it('rejects a slot count that is not a positive integer', () => {
    expect(() => new SendMeter(0)).toThrow(SchedulerError)
    expect(() => new SendMeter(1.5)).toThrow(SchedulerError)
  })
})
