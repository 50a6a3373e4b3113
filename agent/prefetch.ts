import type { Logger } from '../shared/log/index.ts'
import type { Digest } from '../shared/oci/index.ts'
import type { Upstream } from '../shared/origin/index.ts'
import type { ContentStore, Retention } from '../shared/store/index.ts'
import type { RequestContext } from '../shared/swarm/protocol/index.ts'
import type { Downloads } from './blobs/download.ts'
import type { BlobFiller } from './blobs/service.ts'

export class PrefetchRefusedError extends Error {
  override name = 'PrefetchRefusedError'
  readonly code = 'PREFETCH_REFUSED'
}

export interface PrefetcherInit {
  /** Peer ids of the seeders this agent trusts: nobody else may make it download. */
  readonly trusted: ReadonlySet<string>
  readonly store: ContentStore
  readonly downloads: Downloads
  /** The same filler client pulls use (swarm first), so a client asking meanwhile joins the one download. */
  readonly fill: BlobFiller
  readonly upstreamFor: (registry: string) => Upstream
  /** Aborts every prefetch (agent shutdown). */
  readonly signal: AbortSignal
  readonly log: Pick<Logger, 'debug' | 'info'>
  /** Prefetches downloading at once; the rest wait their turn. */
  readonly maxConcurrent?: number
  /** Prefetches waiting; more are refused (the seeder asks another agent). */
  readonly maxQueued?: number
  /**
   * Keeps a blob a seeder asked this agent to hold (a preheat's copies for this agent's site) pinned for the
   * agent's --preheat-ttl; absent (or a TTL of 0): such asks are refused, and the seeder asks another agent.
   */
  readonly holds?: Pick<Retention, 'keep'>
}

const DEFAULT_MAX_CONCURRENT = 2
const DEFAULT_MAX_QUEUED = 256

interface Wanted {
  readonly digest: Digest
  readonly registry: string
  readonly name: string
}

/**
 * A seeder's preheat can ask an agent to pull blobs into its cache before any client wants them.
 * The blob lands in the cache like any other (the store's quota and LRU apply), and serving it to a
 * client still asks the origin whether that client may read it: a prefetch never widens access.
 */
export class Prefetcher {
  readonly #i: PrefetcherInit
  readonly #queue: Wanted[] = []
  readonly #queued = new Set<Digest>()
  /** Blobs to pin as soon as their download (queued or running) completes. */
  readonly #holdWhenDone = new Set<Digest>()
  #running = 0

  constructor(init: PrefetcherInit) {
    this.#i = init
  }

  get running(): number {
    return this.#running
  }

  /** Accepts (resolves at once; the download runs or waits its turn) or refuses (throws PrefetchRefusedError). */
  async accept(
    digest: Digest,
    registry: string,
    name: string,
    ctx: RequestContext,
    opts: { readonly hold?: boolean } = {},
  ): Promise<void> {
    if (!this.#i.trusted.has(ctx.peer.toString())) throw new PrefetchRefusedError('only a trusted seeder may ask')
    // A hold is a site's copy, kept against LRU for --preheat-ttl; an agent without a TTL keeps none.
    const hold = opts.hold === true
    if (hold && this.#i.holds === undefined)
      throw new PrefetchRefusedError('this agent holds no content (--preheat-ttl 0)')
    if (hold) this.#holdWhenDone.add(digest)
    const inFlight = this.#i.downloads.get(digest)
    if (this.#queued.has(digest)) return
    if (inFlight !== undefined) {
      if (hold) void this.#holdAfter(digest, inFlight.finished)
      return
    }
    if ((await this.#i.store.stat(digest)) !== undefined) {
      this.#keep(digest)
      return
    }
    if (this.#queue.length >= (this.#i.maxQueued ?? DEFAULT_MAX_QUEUED)) throw new PrefetchRefusedError('queue full')
    this.#queue.push({ digest, registry, name })
    this.#queued.add(digest)
    this.#pump()
  }

  #pump(): void {
    while (this.#running < (this.#i.maxConcurrent ?? DEFAULT_MAX_CONCURRENT) && !this.#i.signal.aborted) {
      const next = this.#queue.shift()
      if (next === undefined) return
      this.#running++
      void this.#run(next).finally(() => {
        this.#queued.delete(next.digest)
        this.#running--
        this.#pump()
      })
    }
  }

  async #run({ digest, registry, name }: Wanted): Promise<void> {
    const { store, downloads, log } = this.#i
    try {
      if ((await store.stat(digest)) !== undefined) return
      const upstream = this.#i.upstreamFor(registry)
      const { download } = downloads.joinUnasked(store, this.#i.fill, { upstream, name, digest }, this.#i.signal)
      await download.finished
      log.info({ digest }, 'prefetched blob')
      this.#keep(digest)
    } catch (err) {
      this.#holdWhenDone.delete(digest)
      log.debug({ digest, err: (err as Error).message }, 'prefetch failed')
    } finally {
      // Already complete (a client pulled it meanwhile): still held when asked.
      if (this.#holdWhenDone.has(digest) && (await store.stat(digest).catch(() => undefined)) !== undefined)
        this.#keep(digest)
    }
  }

  /** Pins `digest` for the TTL if a hold was asked for it (and clears the ask). */
  #keep(digest: Digest): void {
    if (!this.#holdWhenDone.delete(digest)) return
    this.#i.holds?.keep(digest)
    this.#i.log.info({ digest }, 'holding blob for its site')
  }

  async #holdAfter(digest: Digest, finished: Promise<unknown>): Promise<void> {
    try {
      await finished
      this.#keep(digest)
    } catch {
      this.#holdWhenDone.delete(digest)
    }
  }
}
