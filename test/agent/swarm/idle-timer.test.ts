import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { IdleTimeoutError, IdleTimer } from '../../../agent/swarm/idle-timer.ts'

describe('IdleTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('fires after the window without a touch', () => {
    const t = new IdleTimer(100)
    vi.advanceTimersByTime(99)
    expect(t.signal.aborted).toBe(false)
    vi.advanceTimersByTime(1)
    expect(t.signal.aborted).toBe(true)
    expect(t.signal.reason).toBeInstanceOf(IdleTimeoutError)
  })

  it('restarts the window on each touch, however long the whole takes', () => {
    const t = new IdleTimer(100)
    for (let i = 0; i < 50; i++) {
      vi.advanceTimersByTime(90)
      t.touch()
    }
    expect(t.signal.aborted).toBe(false)
    vi.advanceTimersByTime(100)
    expect(t.signal.aborted).toBe(true)
  })

  it('never fires once stopped, and ignores touches then', () => {
    const t = new IdleTimer(100)
    t.stop()
    t.touch()
    vi.advanceTimersByTime(1000)
    expect(t.signal.aborted).toBe(false)
    t.stop()
  })

  it('refuses a window that is not positive', () => {
    expect(() => new IdleTimer(0)).toThrow(RangeError)
  })
})
