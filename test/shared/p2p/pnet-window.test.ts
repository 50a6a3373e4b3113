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

  // First in the file: it needs ciphers made, and the shared memory grown, before the fix is installed.
  it('does not grow the memory again for every cipher whose view went stale when it grew', () => {
    const ciphers = Array.from({ length: 256 }, () => XSalsa20(nonce, key))
    const twins = Array.from({ length: 256 }, () => XSalsa20(nonce, key))
    // One large call grows the shared memory: every other cipher's view of it is now detached.
    XSalsa20(nonce, key).update(new Uint8Array(2 * MIB))
    installPnetWindow()
    const piece = randomBytes(PNET_XOR_WINDOW_BYTES)
    // Unfixed, each of these 512 calls grew the memory by a window: far past its 64 MiB limit.
    for (let i = 0; i < ciphers.length; i++) {
      const sealed = ciphers[i]!.update(piece)
      expect(Buffer.from(twins[i]!.update(sealed)).equals(piece)).toBe(true)
    }
  })

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
