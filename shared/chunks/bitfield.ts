/**
 * A fixed-length set of chunk indexes, BitTorrent style: bit i (MSB first in byte i>>3) is chunk i.
 * The wire form is exactly `ceil(length / 8)` bytes with the spare trailing bits zero.
 */
export class InvalidBitfieldError extends Error {
  override name = 'InvalidBitfieldError'
  readonly code = 'BITFIELD_INVALID'
}

export class Bitfield {
  readonly length: number
  readonly #bytes: Uint8Array
  #count = 0

  constructor(length: number) {
    if (!Number.isSafeInteger(length) || length < 0) throw new InvalidBitfieldError(`invalid bitfield length ${length}`)
    this.length = length
    this.#bytes = new Uint8Array(Math.ceil(length / 8))
  }

  /** Decodes a wire bitfield, rejecting a wrong byte length or set spare bits (a lying peer). */
  static decode(bytes: Uint8Array, length: number): Bitfield {
    const bf = new Bitfield(length)
    if (bytes.byteLength !== bf.#bytes.byteLength) {
      throw new InvalidBitfieldError(`bitfield has ${bytes.byteLength} bytes, want ${bf.#bytes.byteLength}`)
    }
    const spare = bf.#bytes.byteLength * 8 - length
    if (spare > 0 && (bytes[bytes.byteLength - 1]! & ((1 << spare) - 1)) !== 0) {
      throw new InvalidBitfieldError('bitfield has spare bits set')
    }
    bf.#bytes.set(bytes)
    for (const b of bytes) bf.#count += popcount8(b)
    return bf
  }

  static full(length: number): Bitfield {
    const bf = new Bitfield(length)
    for (let i = 0; i < length; i++) bf.set(i)
    return bf
  }

  has(index: number): boolean {
    if (index < 0 || index >= this.length || !Number.isInteger(index)) return false
    return (this.#bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0
  }

  /** Returns true when the bit was newly set. */
  set(index: number): boolean {
    this.#check(index)
    if (this.has(index)) return false
    this.#bytes[index >> 3]! |= 0x80 >> (index & 7)
    this.#count++
    return true
  }

  /** Returns true when the bit was set before. */
  clear(index: number): boolean {
    this.#check(index)
    if (!this.has(index)) return false
    this.#bytes[index >> 3]! &= ~(0x80 >> (index & 7))
    this.#count--
    return true
  }

  get count(): number {
    return this.#count
  }

  get complete(): boolean {
    return this.#count === this.length
  }

  /** The first index not set at or after `from`, or `length` when all are set. */
  firstMissing(from = 0): number {
    let i = from
    while (i < this.length && this.has(i)) i++
    return i
  }

  *indexes(): IterableIterator<number> {
    for (let i = 0; i < this.length; i++) if (this.has(i)) yield i
  }

  /** ORs this bitfield into `acc` (the encoded form's bytes, ceil(length / 8) of them): a union without copies. */
  orInto(acc: Uint8Array): void {
    const bytes = this.#bytes
    for (let i = 0; i < bytes.length; i++) acc[i]! |= bytes[i]!
  }

  encode(): Uint8Array {
    return this.#bytes.slice()
  }

  clone(): Bitfield {
    return Bitfield.decode(this.#bytes, this.length)
  }

  #check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new InvalidBitfieldError(`chunk index ${index} out of range 0..${this.length - 1}`)
    }
  }
}

function popcount8(b: number): number {
  let n = b - ((b >> 1) & 0x55)
  n = (n & 0x33) + ((n >> 2) & 0x33)
  return (n + (n >> 4)) & 0x0f
}
