import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../log/index.ts'
import { type Digest, isDigest } from '../oci/index.ts'
import type { ContentStore } from './index.ts'

export interface RetentionInit {
  readonly store: Pick<ContentStore, 'pin' | 'stat'>
  /** How long preheated content is kept from the last preheat that wanted it; 0 = not at all. */
  readonly ttlMs: number
  /** Where the deadlines survive a restart (a JSON file in the data dir); absent: memory only. */
  readonly dataDir?: string
  readonly log?: Pick<Logger, 'warn'>
  readonly now?: () => number
  /** Timer used to expire holds; tests pass one they drive by hand. */
  readonly setTimer?: (fn: () => void, ms: number) => { cancel(): void }
}

const FILE = 'preheat-retention.json'

interface Hold {
  until: number
  unpin: () => void
}

function realTimer(fn: () => void, ms: number): { cancel(): void } {
  // Timers past 2^31-1 ms fire at once; a long TTL is re-armed in steps instead.
  const t = setTimeout(fn, Math.min(ms, 2 ** 31 - 1))
  t.unref()
  return { cancel: () => clearTimeout(t) }
}

/**
 * Keeps preheated blobs (a seeder's, or an agent's copies for a site) for a TTL: each is pinned in the store (the store never evicts
 * a pinned blob, nor one being read) until its deadline, then unpinned, which makes it ordinary
 * LRU-evictable content under the disk quota again. A later preheat of the same blob extends it.
 *
 * Pins hold quota: while preheated content fills the quota, pulls that need room fail with
 * StoreFullError rather than evict it. Size the quota for the preheated working set.
 */
export class Retention {
  readonly #i: RetentionInit
  readonly #holds = new Map<Digest, Hold>()
  readonly #now: () => number
  readonly #setTimer: NonNullable<RetentionInit['setTimer']>
  #timer: { cancel(): void } | undefined
  #timerAt = Number.POSITIVE_INFINITY
  #saving: Promise<void> = Promise.resolve()
  #stopped = false

  constructor(init: RetentionInit) {
    this.#i = init
    this.#now = init.now ?? Date.now
    this.#setTimer = init.setTimer ?? realTimer
  }

  /** Restores the holds of a previous run (those not expired, for blobs still in the store). */
  async load(): Promise<void> {
    if (this.#i.dataDir === undefined || this.#i.ttlMs <= 0) return
    let saved: unknown
    try {
      saved = JSON.parse(await readFile(join(this.#i.dataDir, FILE), 'utf8'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#i.log?.warn({ err: (err as Error).message }, 'retention file unreadable, starting empty')
      return
    }
    if (typeof saved !== 'object' || saved === null) return
    const now = this.#now()
    for (const [digest, until] of Object.entries(saved as Record<string, unknown>)) {
      if (!isDigest(digest) || typeof until !== 'number' || until <= now) continue
      // Not more than one TTL from now, whatever a clock jump left in the file.
      if ((await this.#i.store.stat(digest)) !== undefined) this.#hold(digest, Math.min(until, now + this.#i.ttlMs))
    }
    this.#arm()
  }

  /** Keeps `digest` for the TTL from now (extends an earlier hold). */
  keep(digest: Digest): void {
    if (this.#stopped || this.#i.ttlMs <= 0) return
    this.#hold(digest, this.#now() + this.#i.ttlMs)
    this.#arm()
    this.#save()
  }

  /** Releases every hold whose deadline has passed; returns the digests released. */
  sweep(): Digest[] {
    const now = this.#now()
    const released: Digest[] = []
    for (const [digest, h] of this.#holds) {
      if (h.until > now) continue
      h.unpin()
      this.#holds.delete(digest)
      released.push(digest)
    }
    if (released.length > 0) this.#save()
    this.#arm()
    return released
  }

  /** Held digests and their deadlines (ms since the epoch). */
  held(): { digest: Digest; until: number }[] {
    return [...this.#holds].map(([digest, h]) => ({ digest, until: h.until }))
  }

  /** Stops the timer and writes the deadlines; pins die with the store. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#timer?.cancel()
    this.#timer = undefined
    this.#save()
    await this.#saving
  }

  #hold(digest: Digest, until: number): void {
    const h = this.#holds.get(digest)
    if (h !== undefined) h.until = Math.max(h.until, until)
    else this.#holds.set(digest, { until, unpin: this.#i.store.pin(digest) })
  }

  #arm(): void {
    if (this.#stopped) return
    let next = Number.POSITIVE_INFINITY
    for (const h of this.#holds.values()) next = Math.min(next, h.until)
    if (next === this.#timerAt) return
    this.#timer?.cancel()
    this.#timer = undefined
    this.#timerAt = next
    if (next === Number.POSITIVE_INFINITY) return
    this.#timer = this.#setTimer(
      () => {
        this.#timer = undefined
        this.#timerAt = Number.POSITIVE_INFINITY
        this.sweep()
      },
      Math.max(0, next - this.#now()),
    )
  }

  /** Writes are chained, so the file always ends with the latest state; a failed write is only logged. */
  #save(): void {
    const dir = this.#i.dataDir
    if (dir === undefined) return
    const snapshot = JSON.stringify(Object.fromEntries([...this.#holds].map(([d, h]) => [d, h.until])))
    this.#saving = this.#saving.then(async () => {
      try {
        const tmp = join(dir, `${FILE}.tmp`)
        await writeFile(tmp, snapshot)
        await rename(tmp, join(dir, FILE))
      } catch (err) {
        this.#i.log?.warn({ err: (err as Error).message }, 'retention file not written')
      }
    })
  }
}
