import { TokenBucket } from './token-bucket.ts'

/**
 * Bytes that count against two limits at once: a byte to a peer of another site takes from the node's upload cap
 * and from its WAN upload cap. The takes run one after the other, so a byte passes when both allow it; on abort
 * the second reservation is returned, the first is spent (a few KiB at most, one slice).
 */
class BothBuckets extends TokenBucket {
  readonly #a: TokenBucket
  readonly #b: TokenBucket
  override readonly unlimited: boolean

  constructor(a: TokenBucket, b: TokenBucket) {
    super({ bytesPerSecond: 0 })
    this.#a = a
    this.#b = b
    this.unlimited = a.unlimited && b.unlimited
  }

  override async take(n: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#a.take(n, opts)
    await this.#b.take(n, opts)
  }

  override get available(): number {
    return Math.min(this.#a.available, this.#b.available)
  }
}

/** The limit of bytes that count against `a` and `b` (either may be absent); undefined when neither is set. */
export function bothBuckets(a: TokenBucket | undefined, b: TokenBucket | undefined): TokenBucket | undefined {
  if (a === undefined || a.unlimited) return b
  if (b === undefined || b.unlimited) return a
  return new BothBuckets(a, b)
}
