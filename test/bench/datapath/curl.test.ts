import { describe, expect, it } from 'vitest'
import { parseCurlWriteOut } from '../../../bench/datapath/curl.ts'

describe('parseCurlWriteOut', () => {
  it('reads status, bytes, time to first byte and total time', () => {
    expect(parseCurlWriteOut('200 268435456 0.012345 0.456789\n')).toEqual({
      status: 200,
      bytes: 268435456,
      ttfbS: 0.012345,
      totalS: 0.456789,
    })
  })
  it('refuses anything else', () => {
    expect(() => parseCurlWriteOut('200 12')).toThrow()
    expect(() => parseCurlWriteOut('200 x 0.1 0.2')).toThrow()
  })
})
