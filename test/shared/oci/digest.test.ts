import { describe, expect, it } from 'vitest'
import { Digester, digestOf, isDigest, parseDigest } from '../../../shared/oci/index.ts'

describe('digest', () => {
  it('accepts sha256 and sha512 of the right length only', () => {
    expect(isDigest(`sha256:${'0'.repeat(64)}`)).toBe(true)
    expect(isDigest(`sha512:${'0'.repeat(128)}`)).toBe(true)
    expect(isDigest(`sha256:${'0'.repeat(63)}`)).toBe(false)
    expect(isDigest(`sha512:${'0'.repeat(64)}`)).toBe(false)
    expect(isDigest(`md5:${'0'.repeat(32)}`)).toBe(false)
    expect(isDigest(`sha256:${'0'.repeat(64)}\n`)).toBe(false)
    expect(() => parseDigest('sha256:../../x')).toThrow(expect.objectContaining({ code: 'DIGEST_INVALID' }))
  })

  it('hashes incrementally to the same digest as in one go', () => {
    const bytes = new TextEncoder().encode('hello shoal')
    const d = new Digester('sha256')
    d.update(bytes.subarray(0, 3))
    d.update(bytes.subarray(3))
    expect(d.digest()).toBe(digestOf(bytes))
    expect(d.bytes).toBe(bytes.byteLength)
  })
})
