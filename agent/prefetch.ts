import type { Logger } from '../shared/log/index.ts'
import type { Digest } from '../shared/oci/index.ts'
import type { Upstream } from '../shared/origin/index.ts'
import type { ContentStore } from '../shared/store/index.ts'
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
    // Holding content for a TTL is a seeder's job; an agent's cache stays under plain LRU.
    if (opts.hold === true) throw new PrefetchRefusedError('an agent does not hold content')
    if (this.#queued.has(digest) || this.#i.downloads.get(digest) !== undefined) return
    if ((await this.#i.store.stat(digest)) !== undefined) return
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
      const { download } = downloads.join(digest, store, (dl) =>
        this.#i.fill(dl, {
          method: 'GET',
          upstream,
          name,
          digest,
          range: undefined,
          authorization: undefined,
          signal: this.#i.signal,
        }),
      )
      await download.finished
      log.info({ digest }, 'prefetched blob')
    } catch (err) {
      log.debug({ digest, err: (err as Error).message }, 'prefetch failed')
    }
  }
}
