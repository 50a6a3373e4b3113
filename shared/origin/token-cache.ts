import { MAX_CACHED_TOKENS, TOKEN_EXPIRY_MARGIN_MS } from './constants.ts'

export interface CachedToken {
  readonly token: string
  readonly expiresAt: number
}

/**
 * Bearer tokens by (registry, scope, credential identity). The identity is a keyed hash of the
 * credential that obtained the token, so a token is only ever reused for the same credential.
 * Concurrent misses for one key share a single fetch.
 */
export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>()
  readonly #inflight = new Map<string, Promise<unknown>>()
  readonly #now: () => number
  readonly #max: number

  constructor(opts: { now?: () => number; maxEntries?: number } = {}) {
    this.#now = opts.now ?? Date.now
    this.#max = opts.maxEntries ?? MAX_CACHED_TOKENS
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
    const entry = { token, expiresAt: this.#now() + lifeMs - Math.min(TOKEN_EXPIRY_MARGIN_MS, lifeMs / 2) }
    this.#tokens.delete(key)
    this.#tokens.set(key, entry)
    // Map order is insertion order: the first key is the least recently stored.
    while (this.#tokens.size > this.#max) this.#tokens.delete(this.#tokens.keys().next().value!)
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
