import { createRequire } from 'node:module'

/**
 * The private-network protector (`@libp2p/pnet`, `--swarm-key`) XORs every byte with `xsalsa20`, whose WebAssembly
 * memory grows to the largest single input it was given and can never pass 64 MiB: one large enough buffer on a
 * protected connection throws from inside an event handler and takes the whole process down (seen in a fleet
 * run: "WebAssembly.Memory.grow(): Maximum memory size exceeded"). The cipher is a stream cipher that carries its
 * position across calls, so feeding a large input in windows gives the same bytes and keeps the memory at one
 * window. Installed once, before the first protected connection.
 */
export const PNET_XOR_WINDOW_BYTES = 1024 * 1024

interface XorCipher {
  update(input: Uint8Array, output?: Uint8Array): Uint8Array
}

let installed = false

export function installPnetWindow(): void {
  if (installed) return
  installed = true
  const XSalsa20 = createRequire(import.meta.resolve('@libp2p/pnet'))('xsalsa20') as { prototype: XorCipher }
  const update = XSalsa20.prototype.update
  XSalsa20.prototype.update = function (this: XorCipher, input: Uint8Array, output?: Uint8Array): Uint8Array {
    if (input.length <= PNET_XOR_WINDOW_BYTES) return update.call(this, input, output)
    const out = output ?? new Uint8Array(input.length)
    for (let at = 0; at < input.length; at += PNET_XOR_WINDOW_BYTES) {
      const end = Math.min(at + PNET_XOR_WINDOW_BYTES, input.length)
      update.call(this, input.subarray(at, end), out.subarray(at, end))
    }
    return out
  }
}
