import { LRUCache } from 'lru-cache'
import { MAX_CACHED_TOKENS, TOKEN_EXPIRY_MARGIN_MS } from './constants.ts'

export interface CachedToken {
  readonly token: string
  readonly expiresAt: number
}

/**
 * Bearer tokens by (registry, scope, credential identity). The identity is a keyed hash of the
 * credential that obtained the token, so a token is only ever reused for the same credential.
 * Concurrent misses for one key share a single fetch. Bounded: every client credential that passes
 * through the agent is an identity, and clients rotate theirs; past `maxEntries` the least recently
 * used token goes first (its next request fetches a new one), and each leaves at its own expiry.
 */
export class TokenCache {
  readonly #tokens: LRUCache<string, CachedToken>
  /** Only fetches under way: each leaves when it settles. */
  readonly #inflight = new Map<string, Promise<unknown>>()
  readonly #now: () => number

  constructor(opts: { now?: () => number; maxEntries?: number } = {}) {
    this.#now = opts.now ?? Date.now
    this.#tokens = new LRUCache({
      max: opts.maxEntries ?? MAX_CACHED_TOKENS,
      ttlResolution: 0,
      perf: { now: this.#now },
    })
  }

  static key(registry: string, scope: string, identity: string): string {
    return `${registry}\n${scope}\n${identity}`
  }

  get(key: string): string | undefined {
    const t = this.#tokens.get(key)
    if (t === undefined) return undefined
    if (t.expiresAt <= this.#now()) {
      this.#tokens.delete(key)
      return undefined
    }
    return t.token
  }

  delete(key: string): void {
    this.#tokens.delete(key)
  }

  /** Caches a token for `expiresInS` seconds less a safety margin (at most half its life). */
  set(key: string, token: string, expiresInS: number): CachedToken {
    const lifeMs = expiresInS * 1000
    const ttlMs = lifeMs - Math.min(TOKEN_EXPIRY_MARGIN_MS, lifeMs / 2)
    const entry = { token, expiresAt: this.#now() + ttlMs }
    // A TTL of 0 means "forever" to the cache: a token with no life left is not stored at all.
    if (ttlMs > 0) this.#tokens.set(key, entry, { ttl: Math.ceil(ttlMs) })
    else this.#tokens.delete(key)
    return entry
  }

  /** Runs `fetch` unless one is already under way for `key`, whose result is then shared. */
  async fetchOnce<T>(key: string, fetch: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key) as Promise<T> | undefined
    if (running !== undefined) return await running
    const p = fetch().finally(() => this.#inflight.delete(key))
    this.#inflight.set(key, p)
    return await p
  }

  get size(): number {
    return this.#tokens.size
  }
}
