import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Digest } from '../../shared/oci/index.ts'
import { blobCid, type P2PNode } from '../../shared/p2p/index.ts'

export interface FoundProvider {
  readonly id: PeerId
  readonly multiaddrs: readonly Multiaddr[]
}

/** One DHT query for the providers of a blob; ends when the query does or `signal` aborts. */
export type FindProviders = (digest: Digest, opts: { signal: AbortSignal }) => AsyncIterable<FoundProvider>

export interface ProviderLookupsInit {
  readonly find: FindProviders
  /** A lookup that takes longer is cut short: what it found by then is its answer. */
  readonly timeoutMs: number
  /** How long a finished lookup's answer is reused. */
  readonly cacheMs: number
  /** Providers one lookup keeps (a uniform sample; each one entering it is passed on), default MAX_PROVIDERS_PER_LOOKUP. */
  readonly maxProviders?: number
  /** Milliseconds from the start of a lookup to its first provider (the DHT lookup latency metric). */
  readonly onFirst?: (ms: number) => void
  readonly now?: () => number
  /** Uniform in [0, 1), for the sample (default Math.random). */
  readonly random?: () => number
}

/**
 * Providers one lookup keeps. kad-dht answers GET_PROVIDERS with every provider a record holder knows (all N of
 * an N-node rollout: ~10,000 peer records at 10,000 nodes) and in the holder's key order, the same for every
 * asker; a download follows at most MAX_TRACKED_PEERS (40) of them. A lookup keeps a uniform sample of this many
 * of what it hears, so memory per lookup is bounded and agents do not all follow the same first few providers.
 */
export const MAX_PROVIDERS_PER_LOOKUP = 64

interface Lookup {
  readonly found: FoundProvider[]
  readonly listeners: Set<(p: FoundProvider) => void>
  readonly ac: AbortController
  done: Promise<void>
  /** Set when the query ended by itself or by its timeout (not abandoned): its answer may be reused. */
  finishedAt: number | undefined
  users: number
}

/**
 * DHT provider lookups, de-duplicated and briefly cached: a caller asking about a blob whose lookup is under way
 * joins it (hears what it already found, then what it finds next), one asking shortly after a lookup finished
 * gets that answer without a new query, and a lookup everyone has left is aborted.
 */
export class ProviderLookups {
  readonly #i: ProviderLookupsInit
  readonly #now: () => number
  readonly #lookups = new Map<Digest, Lookup>()
  /** Queries actually sent to the DHT (tests and metrics). */
  started = 0

  constructor(init: ProviderLookupsInit) {
    this.#i = init
    this.#now = init.now ?? Date.now
  }

  /** Calls `onProvider` once per provider found; resolves when the lookup ends or `signal` aborts. */
  async lookup(digest: Digest, onProvider: (p: FoundProvider) => void, opts: { signal: AbortSignal }): Promise<void> {
    opts.signal.throwIfAborted()
    this.#prune()
    let l = this.#lookups.get(digest)
    if (l?.finishedAt !== undefined) {
      for (const p of l.found) onProvider(p)
      return
    }
    l ??= this.#start(digest)
    const lookup = l
    lookup.users++
    for (const p of lookup.found) onProvider(p)
    lookup.listeners.add(onProvider)
    let onAbort: (() => void) | undefined
    try {
      await Promise.race([
        lookup.done,
        new Promise<void>((resolve) => {
          onAbort = () => resolve()
          opts.signal.addEventListener('abort', onAbort, { once: true })
        }),
      ])
    } finally {
      if (onAbort !== undefined) opts.signal.removeEventListener('abort', onAbort)
      lookup.listeners.delete(onProvider)
      lookup.users--
      if (lookup.users === 0 && lookup.finishedAt === undefined) {
        // Nobody waits for it any more: stop querying, and do not keep a cut-short answer.
        lookup.ac.abort()
        if (this.#lookups.get(digest) === lookup) this.#lookups.delete(digest)
      }
    }
  }

  #start(digest: Digest): Lookup {
    this.started++
    const ac = new AbortController()
    const signal = AbortSignal.any([ac.signal, AbortSignal.timeout(this.#i.timeoutMs)])
    const found: FoundProvider[] = []
    const listeners = new Set<(p: FoundProvider) => void>()
    const seen = new Set<string>()
    const max = this.#i.maxProviders ?? MAX_PROVIDERS_PER_LOOKUP
    const random = this.#i.random ?? Math.random
    const started = this.#now()
    const lookup: Lookup = { found, listeners, ac, done: Promise.resolve(), finishedAt: undefined, users: 0 }
    lookup.done = (async () => {
      try {
        for await (const p of this.#i.find(digest, { signal })) {
          const key = p.id.toString()
          if (seen.has(key)) continue
          if (seen.size === 0) this.#i.onFirst?.(this.#now() - started)
          seen.add(key)
          // Reservoir sampling: the n-th distinct provider is kept with probability max / n.
          if (found.length < max) found.push(p)
          else {
            const j = Math.floor(random() * seen.size)
            if (j >= max) continue
            found[j] = p
          }
          for (const l of [...listeners]) l(p)
        }
      } catch {
        // A query cut short by its timeout found what it found; a failed one found nothing more.
      }
      if (!ac.signal.aborted) lookup.finishedAt = this.#now()
    })()
    this.#lookups.set(digest, lookup)
    return lookup
  }

  #prune(): void {
    const now = this.#now()
    for (const [digest, l] of this.#lookups) {
      if (l.finishedAt !== undefined && now - l.finishedAt >= this.#i.cacheMs) this.#lookups.delete(digest)
    }
  }
}

/** Provider lookups over a libp2p node's content routing (kad-dht). */
export function dhtFindProviders(node: P2PNode): FindProviders {
  return (digest, { signal }) => node.contentRouting.findProviders(blobCid(digest), { signal })
}
