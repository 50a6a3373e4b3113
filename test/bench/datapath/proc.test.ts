import { describe, expect, it } from 'vitest'
import { parseStatTicks, parseStatusBytes } from '../../../bench/datapath/proc.ts'

describe('parseStatTicks', () => {
  it('adds utime and stime, counting fields after the last parenthesis', () => {
    // A command name with spaces and a ')' of its own must not shift the fields.
    const stat = '4242 (node) x (y)) S 1 4242 4242 0 -1 4194304 9000 0 12 0 731 269 0 0 20 0 11 0 100 1000000 40000'
    expect(parseStatTicks(stat)).toBe(731 + 269)
  })

  it('refuses a line without the fields', () => {
    expect(() => parseStatTicks('no parenthesis here')).toThrow()
    expect(() => parseStatTicks('1 (x) S 1 2')).toThrow()
  })
})

describe('parseStatusBytes', () => {
  const status = ['Name:\tnode', 'VmPeak:\t 1200000 kB', 'VmHWM:\t  250000 kB', 'VmRSS:\t  180000 kB'].join('\n')
  it('reads a field in kB as bytes', () => {
    expect(parseStatusBytes(status, 'VmHWM')).toBe(250_000 * 1024)
    expect(parseStatusBytes(status, 'VmRSS')).toBe(180_000 * 1024)
  })
  it('throws when the field is missing', () => {
    expect(() => parseStatusBytes('Name:\tnode', 'VmRSS')).toThrow(/VmRSS/)
  })
})
