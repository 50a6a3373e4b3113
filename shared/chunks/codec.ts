import { type Digest, type DigestAlgorithm, digestAlgorithm, digestHex } from '../oci/digest.ts'
import { CHUNK_DIGEST_BYTES } from './constants.ts'

/** Algorithm tags of the binary forms. */
const ALGORITHM_TAG: Readonly<Record<DigestAlgorithm, number>> = { sha256: 1, sha512: 2 }
const TAG_ALGORITHM: Readonly<Record<number, DigestAlgorithm>> = { 1: 'sha256', 2: 'sha512' }
const DIGEST_BYTES: Readonly<Record<DigestAlgorithm, number>> = { sha256: 32, sha512: 64 }

/** Big-endian, fixed-width writer: every value has exactly one encoding. */
export class Writer {
  readonly #bytes: Uint8Array
  readonly #view: DataView
  #at = 0

  constructor(length: number) {
    this.#bytes = new Uint8Array(length)
    this.#view = new DataView(this.#bytes.buffer)
  }

  u8(n: number): this {
    this.#view.setUint8(this.#at, n)
    this.#at += 1
    return this
  }

  u16(n: number): this {
    this.#view.setUint16(this.#at, n)
    this.#at += 2
    return this
  }

  u32(n: number): this {
    this.#view.setUint32(this.#at, n)
    this.#at += 4
    return this
  }

  u64(n: number): this {
    this.#view.setBigUint64(this.#at, BigInt(n))
    this.#at += 8
    return this
  }

  raw(b: Uint8Array): this {
    this.#bytes.set(b, this.#at)
    this.#at += b.byteLength
    return this
  }

  /** Algorithm tag then the raw hash bytes. */
  digest(d: Digest): this {
    return this.u8(ALGORITHM_TAG[digestAlgorithm(d)]).raw(Buffer.from(digestHex(d), 'hex'))
  }

  done(): Uint8Array {
    if (this.#at !== this.#bytes.byteLength) throw new Error(`writer filled ${this.#at} of ${this.#bytes.byteLength}`)
    return this.#bytes
  }
}

export function encodedDigestLength(d: Digest): number {
  return 1 + DIGEST_BYTES[digestAlgorithm(d)]
}

/** Reader over untrusted bytes: every read is bounds-checked and failures carry the caller's error type. */
export class Reader {
  readonly #bytes: Uint8Array
  readonly #view: DataView
  readonly #fail: (message: string) => Error
  #at = 0

  constructor(bytes: Uint8Array, fail: (message: string) => Error) {
    this.#bytes = bytes
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.#fail = fail
  }

  get remaining(): number {
    return this.#bytes.byteLength - this.#at
  }

  #need(n: number, what: string): void {
    if (this.remaining < n) throw this.#fail(`truncated ${what}`)
  }

  u8(what: string): number {
    this.#need(1, what)
    return this.#view.getUint8(this.#at++)
  }

  u16(what: string): number {
    this.#need(2, what)
    const n = this.#view.getUint16(this.#at)
    this.#at += 2
    return n
  }

  u32(what: string): number {
    this.#need(4, what)
    const n = this.#view.getUint32(this.#at)
    this.#at += 4
    return n
  }

  u64(what: string): number {
    this.#need(8, what)
    const n = this.#view.getBigUint64(this.#at)
    this.#at += 8
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw this.#fail(`${what} too large`)
    return Number(n)
  }

  raw(n: number, what: string): Uint8Array {
    this.#need(n, what)
    const b = this.#bytes.subarray(this.#at, this.#at + n)
    this.#at += n
    return b
  }

  digest(what: string): Digest {
    const algorithm = TAG_ALGORITHM[this.u8(what)]
    if (algorithm === undefined) throw this.#fail(`${what} has an unknown algorithm`)
    return `${algorithm}:${Buffer.from(this.raw(DIGEST_BYTES[algorithm], what)).toString('hex')}` as Digest
  }

  chunkDigest(what: string): string {
    return `sha256:${Buffer.from(this.raw(CHUNK_DIGEST_BYTES, what)).toString('hex')}`
  }

  end(): void {
    if (this.remaining !== 0) throw this.#fail(`${this.remaining} trailing bytes`)
  }
}
