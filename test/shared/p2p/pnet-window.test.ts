import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { installPnetWindow, PNET_XOR_WINDOW_BYTES } from '../../../shared/p2p/pnet-window.ts'

type Cipher = { update(input: Uint8Array, output?: Uint8Array): Uint8Array }
const XSalsa20 = createRequire(import.meta.resolve('@libp2p/pnet'))('xsalsa20') as (
  nonce: Uint8Array,
  key: Uint8Array,
) => Cipher

const MIB = 1024 * 1024

describe('the swarm-key cipher fed in windows', () => {
  const nonce = randomBytes(24)
  const key = randomBytes(32)

  it('gives the same bytes as one call, across calls of any size', () => {
    const input = randomBytes(3 * MIB + 17)
    const whole = XSalsa20(nonce, key).update(input)
    installPnetWindow()
    const windowed = XSalsa20(nonce, key)
    const parts = [windowed.update(input.subarray(0, 5)), windowed.update(input.subarray(5))]
    expect(Buffer.concat(parts).equals(Buffer.from(whole))).toBe(true)
    // And back: the same cipher position decrypts.
    expect(Buffer.from(XSalsa20(nonce, key).update(whole)).equals(input)).toBe(true)
  })

  it('takes an input larger than the cipher memory can ever hold (the process used to die here)', () => {
    installPnetWindow()
    const big = new Uint8Array(80 * MIB)
    const out = XSalsa20(nonce, key).update(big)
    expect(out.length).toBe(big.length)
    expect(PNET_XOR_WINDOW_BYTES).toBeLessThan(64 * MIB)
  })
})
