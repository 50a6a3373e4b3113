import { describe, expect, it } from 'vitest'
import { CLOCK_TICKS_PER_S } from '../../../bench/datapath/proc.ts'
import { busyFraction, busySeconds, cpuUse, parseProcStat } from '../../../bench/fleet/cpu.ts'

const A = `cpu  100 0 50 800 50 0 0 0 0 0
cpu0 50 0 25 400 25 0 0 0 0 0
cpu1 50 0 25 400 25 0 0 0 0 0
intr 12345
ctxt 999
`
// cpu0 busy the whole interval (100 jiffies of softirq), cpu1 idle
const B = `cpu  100 0 50 900 50 0 100 0 0 0
cpu0 50 0 25 400 25 0 100 0 0 0
cpu1 50 0 25 500 25 0 0 0 0 0
`

describe('parseProcStat', () => {
  it('reads the machine line and every core', () => {
    const s = parseProcStat(A)
    expect(s.all).toEqual({ total: 1000, idle: 850 })
    expect(s.cores).toHaveLength(2)
    expect(s.cores[0]).toEqual({ total: 500, idle: 425 })
  })

  it('leaves guest time out (it is already inside user time)', () => {
    const s = parseProcStat('cpu  10 0 0 10 0 0 0 0 7 7\n')
    expect(s.all.total).toBe(20)
  })

  it('refuses text without a cpu line', () => {
    expect(() => parseProcStat('intr 1\n')).toThrow(TypeError)
  })
})

describe('busyFraction and cpuUse', () => {
  it('counts softirq (network) time as busy and iowait as idle', () => {
    const a = parseProcStat(A)
    const b = parseProcStat(B)
    expect(busyFraction(a.all, b.all)).toBeCloseTo(0.5)
    expect(cpuUse(a, b)).toEqual({ busy: 0.5, perCore: [1, 0] })
  })

  it('is 0 over an empty interval', () => {
    const a = parseProcStat(A)
    expect(busyFraction(a.all, a.all)).toBe(0)
  })
})

describe('busySeconds', () => {
  it('is the busy clock ticks of every core together, in seconds', () => {
    // 200 ticks passed on the machine line, 100 of them idle (cpu1's)
    expect(busySeconds(parseProcStat(A), parseProcStat(B))).toBeCloseTo(100 / CLOCK_TICKS_PER_S)
  })
})
