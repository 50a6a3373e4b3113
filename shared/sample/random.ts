import { type Cipheriv, createCipheriv, createHash } from 'node:crypto'

const ZEROS = Buffer.alloc(1024 * 1024)

/**
 * Incompressible bytes from a label: AES-256-CTR keystream under a key hashed from the label.
 * Several GB/s with AES-NI, so sample layers are disk-bound; the same label gives the same bytes.
 */
export class KeyStream {
  readonly #cipher: Cipheriv

  constructor(label: string) {
    const key = createHash('sha256').update(`shoal-sample/v1\n${label}`).digest()
    this.#cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  }

  /** The next `bytes` of keystream, at most 1 MiB per call. */
  next(bytes: number): Buffer {
    if (bytes > ZEROS.length) throw new RangeError(`at most ${ZEROS.length} bytes per call`)
    return this.#cipher.update(ZEROS.subarray(0, bytes))
  }

  static readonly maxChunkBytes = ZEROS.length
}
