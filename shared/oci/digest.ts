import { createHash, type Hash } from 'node:crypto'
import { InvalidDigestError } from './errors.ts'

/** An OCI content digest (`sha256:<64 hex>` or `sha512:<128 hex>`), validated once at the edge. */
export type Digest = string & { readonly __brand: 'Digest' }

export type DigestAlgorithm = 'sha256' | 'sha512'

const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128 }
const DIGEST_RE = /^(sha256|sha512):([a-f0-9]+)$/

export function isDigest(value: string): value is Digest {
  const m = DIGEST_RE.exec(value)
  return m !== null && m[2]!.length === HEX_LENGTH[m[1] as DigestAlgorithm]
}

/** Parses untrusted input into a Digest; throws InvalidDigestError (code DIGEST_INVALID). */
export function parseDigest(value: string): Digest {
  if (!isDigest(value)) throw new InvalidDigestError(value)
  return value
}

export function digestAlgorithm(d: Digest): DigestAlgorithm {
  return d.slice(0, d.indexOf(':')) as DigestAlgorithm
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1)
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest
}

/** Incremental hasher that yields a Digest of the same algorithm as `expected`. */
export class Digester {
  readonly algorithm: DigestAlgorithm
  readonly #hash: Hash
  #bytes = 0

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm
    this.#hash = createHash(algorithm)
  }

  static for(expected: Digest): Digester {
    return new Digester(digestAlgorithm(expected))
  }

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk)
    this.#bytes += chunk.byteLength
  }

  get bytes(): number {
    return this.#bytes
  }

  digest(): Digest {
    return `${this.algorithm}:${this.#hash.digest('hex')}` as Digest
  }
}
