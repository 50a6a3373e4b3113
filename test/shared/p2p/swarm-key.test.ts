import { describe, expect, it } from 'vitest'
import { generateSwarmKey, InvalidSwarmKeyError, parseSwarmKey } from '../../../shared/p2p/index.ts'

describe('swarm key', () => {
  it('generates a pnet v1 key file with a fresh random key each time', () => {
    const a = generateSwarmKey()
    expect(a).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    expect(generateSwarmKey()).not.toBe(a)
  })

  it('parses what it generates, CRLF files and upper-case hex, into the canonical form', () => {
    const key = generateSwarmKey()
    const canonical = new TextDecoder().decode(parseSwarmKey(key))
    expect(canonical).toBe(key.trimEnd())
    const hex = key.split('\n')[2]!
    const crlf = `/key/swarm/psk/1.0.0/\r\n/base16/\r\n${hex.toUpperCase()}\r\n`
    expect(new TextDecoder().decode(parseSwarmKey(crlf))).toBe(key.trimEnd())
    expect(new TextDecoder().decode(parseSwarmKey(new TextEncoder().encode(key)))).toBe(key.trimEnd())
  })

  it.each([
    ['empty', ''],
    ['wrong header', `/key/swarm/psk/2.0.0/\n/base16/\n${'ab'.repeat(32)}`],
    ['wrong encoding', `/key/swarm/psk/1.0.0/\n/base64/\n${'ab'.repeat(32)}`],
    ['short key', `/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(31)}`],
    ['non-hex key', `/key/swarm/psk/1.0.0/\n/base16/\n${'zz'.repeat(32)}`],
    ['trailing junk', `/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(32)}\nmore`],
  ])('rejects %s', (_name, text) => {
    expect(() => parseSwarmKey(text)).toThrow(InvalidSwarmKeyError)
  })
})
