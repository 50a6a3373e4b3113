import { MessageType } from '@libp2p/kad-dht'
import type { Logger } from '../../shared/log/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { blobCid, type P2PNode } from '../../shared/p2p/index.ts'

/**
 * What the announcer needs from the DHT. Re-providing on a schedule is the DHT's own job (kad-dht's reprovider
 * re-publishes every record this node holds for itself, see `reprovideSchedule` in shared/p2p); the announcer
 * decides when a record starts and when it ends.
 */
export interface ProviderRouting {
  /** Publishes "this node provides the blob" (and keeps it as a local record); resolves with how many peers took it. */
  provide(digest: Digest, opts: { signal: AbortSignal }): Promise<number>
  /** Drops this node's own record: the DHT neither answers with it nor re-provides it any more. */
  unprovide(digest: Digest): Promise<void>
}

export interface AnnouncerInit {
  readonly routing: ProviderRouting
  readonly log?: Logger
  /** Provides in flight at once (a restart with a full cache announces every blob). Default 4. */
  readonly concurrency?: number
  /**
   * A provide that reached no peer (the node has none yet, e.g. right after start) is tried again after these
   * delays; after the last one the DHT's reprovider takes over. Default 1 s, 2 s, 4 s ... 64 s.
   */
  readonly retryDelaysMs?: readonly number[]
}

export type AnnounceState = 'queued' | 'providing' | 'provided' | 'waiting' | 'withdrawing'

interface Entry {
  state: AnnounceState
  /** Aborts the provide in flight or the retry timer. */
  ac: AbortController
  /** A withdraw (then maybe a new announce) waits for this before it touches the DHT. */
  settled: Promise<void>
  attempt: number
  /** announce() arrived while a withdraw was running: provide again once it is done. */
  again: boolean
}

const DEFAULT_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16_000, 32_000, 64_000]

/**
 * Which blobs this node tells the DHT it provides: from the first verified chunk (or a blob found complete at
 * start-up) until the blob leaves the store. Each digest is provided once per holding, however often it is
 * announced; a withdrawal waits for a provide still in flight (which writes the local record first) and then
 * removes the record, so an evicted blob is neither re-provided nor listed by this node.
 */
export class Announcer {
  readonly #routing: ProviderRouting
  readonly #log: Logger | undefined
  readonly #concurrency: number
  readonly #retryDelays: readonly number[]
  readonly #entries = new Map<Digest, Entry>()
  readonly #queue: Digest[] = []
  readonly #pending = new Set<Promise<void>>()
  #running = 0
  #stopped = false

  constructor(init: AnnouncerInit) {
    this.#routing = init.routing
    this.#log = init.log
    this.#concurrency = init.concurrency ?? 4
    this.#retryDelays = init.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS
  }

  /** This node holds (part of) the blob now. Idempotent while it does. */
  announce(digest: Digest): void {
    if (this.#stopped) return
    const entry = this.#entries.get(digest)
    if (entry !== undefined) {
      if (entry.state === 'withdrawing') entry.again = true
      return
    }
    this.#enqueue(digest, {
      state: 'queued',
      ac: new AbortController(),
      settled: Promise.resolve(),
      attempt: 0,
      again: false,
    })
  }

  /** Blobs found complete in the store at start-up (provider records live in memory: a restart lost them). */
  announceAll(digests: Iterable<Digest>): void {
    for (const d of digests) this.announce(d)
  }

  /** The blob left the store (evicted or deleted). Synchronous so it can be called from the store's onEvict. */
  withdraw(digest: Digest): void {
    const entry = this.#entries.get(digest)
    if (entry === undefined || entry.state === 'withdrawing') {
      if (entry !== undefined) entry.again = false
      return
    }
    const wasQueued = entry.state === 'queued'
    entry.state = 'withdrawing'
    entry.again = false
    entry.ac.abort()
    if (wasQueued) {
      // Never reached the DHT: nothing to take back.
      this.#entries.delete(digest)
      return
    }
    const before = entry.settled
    this.#track(
      (async () => {
        await before
        try {
          await this.#routing.unprovide(digest)
        } catch (err) {
          this.#log?.debug({ digest, err: (err as Error).message }, 'unprovide failed')
        }
        if (this.#entries.get(digest) !== entry) return
        this.#entries.delete(digest)
        if (entry.again) this.announce(digest)
      })(),
    )
  }

  state(digest: Digest): AnnounceState | undefined {
    return this.#entries.get(digest)?.state
  }

  /** Resolves when nothing is queued, in flight or waiting to retry (tests, shutdown). */
  async idle(): Promise<void> {
    // Whatever is queued waits behind something pending.
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
  }

  /** Aborts provides in flight and retries; records already in the DHT expire on their own. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#queue.length = 0
    for (const e of this.#entries.values()) e.ac.abort()
    await Promise.allSettled([...this.#pending])
  }

  #enqueue(digest: Digest, entry: Entry): void {
    this.#entries.set(digest, entry)
    this.#queue.push(digest)
    this.#pump()
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#queue.length > 0 && !this.#stopped) {
      const digest = this.#queue.shift()!
      const entry = this.#entries.get(digest)
      if (entry === undefined || entry.state !== 'queued') continue
      this.#running++
      entry.state = 'providing'
      const run = this.#provide(digest, entry).finally(() => {
        this.#running--
        this.#pump()
      })
      entry.settled = run
      this.#track(run)
    }
  }

  async #provide(digest: Digest, entry: Entry): Promise<void> {
    let reached = 0
    try {
      reached = await this.#routing.provide(digest, { signal: entry.ac.signal })
    } catch (err) {
      if (entry.ac.signal.aborted) return
      this.#log?.debug({ digest, err: (err as Error).message }, 'provide failed')
    }
    if (entry.state !== 'providing') return
    const delay = this.#retryDelays[entry.attempt]
    if (reached > 0 || delay === undefined) {
      entry.state = 'provided'
      return
    }
    // Nobody took the record (no peer yet): try again a little later rather than wait for the reprovider.
    entry.state = 'waiting'
    entry.attempt++
    const timer = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, delay)
      t.unref()
      entry.ac.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t)
          resolve()
        },
        { once: true },
      )
    })
    this.#track(
      timer.then(() => {
        if (entry.state !== 'waiting' || this.#entries.get(digest) !== entry) return
        entry.state = 'queued'
        this.#queue.push(digest)
        this.#pump()
      }),
    )
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p)
    void p.finally(() => this.#pending.delete(p))
  }
}

/** The announcer's view of a libp2p node: provide counts the peers that accepted the record. */
export function dhtProviderRouting(node: P2PNode): ProviderRouting {
  return {
    async provide(digest, { signal }) {
      let reached = 0
      for await (const ev of node.services.dht.provide(blobCid(digest), { signal })) {
        // The closest-peer query answers too: count only the peers the record itself reached.
        if (ev.name === 'PEER_RESPONSE' && ev.messageType === MessageType.ADD_PROVIDER) reached++
      }
      return reached
    },
    unprovide: (digest) => node.contentRouting.cancelReprovide(blobCid(digest)),
  }
}
