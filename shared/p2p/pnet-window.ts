import { createRequire } from 'node:module'

/**
 * The private-network protector (`@libp2p/pnet`, `--swarm-key`) XORs every byte with `xsalsa20`, whose ciphers share
 * one WebAssembly memory that can never pass 64 MiB. Two of its habits take a busy agent down ("WebAssembly.Memory.
 * grow(): Maximum memory size exceeded", thrown from an event handler, seen in a seederless fleet run):
 *
 * - a cipher grows the memory to fit its whole input, however large;
 * - growing the memory detaches every other cipher's view of it, and a cipher with a detached view (length 0)
 *   grows the memory again by its whole input size on its next call: with many connections busy at once the
 *   memory climbs by one input per call until the limit.
 *
 * So: inputs go in windows (a stream cipher keeps its position across calls: the same bytes), and a cipher whose
 * view went stale takes the current one instead of growing. Installed once, before the first protected connection.
 */
export const PNET_XOR_WINDOW_BYTES = 256 * 1024

interface Wasm {
  _memory: Uint8Array
  realloc(size: number): void
}

interface XorCipher {
  _xor: Wasm | null
  update(input: Uint8Array, output?: Uint8Array): Uint8Array
  finalize(): void
}

let installed = false

export function installPnetWindow(): void {
  if (installed) return
  installed = true
  const XSalsa20 = createRequire(import.meta.resolve('@libp2p/pnet'))('xsalsa20') as {
    (nonce: Uint8Array, key: Uint8Array): XorCipher
    prototype: XorCipher
  }
  // The WebAssembly implementation (there is a plain JS one without WebAssembly, which needs none of this).
  const probe = XSalsa20(new Uint8Array(24), new Uint8Array(32))
  const wasm = probe._xor === null ? undefined : (Object.getPrototypeOf(probe._xor) as Wasm)
  let current: Uint8Array | undefined = probe._xor?._memory
  probe.finalize()
  if (wasm !== undefined && typeof wasm.realloc === 'function' && current !== undefined) {
    const realloc = wasm.realloc
    wasm.realloc = function (this: Wasm, size: number): void {
      // Every growth goes through here, so `current` is the memory's live view.
      if (current !== undefined && current.length > 0) {
        this._memory = current
        if (size < current.length) return
      }
      realloc.call(this, size)
      current = this._memory
    }
  }
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
