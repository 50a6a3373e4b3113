import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerId } from '@libp2p/interface'
import { type ChunkGeometry, chunkRange, type SignedChunkMap, verifySignedChunkMap } from '../../shared/chunks/index.ts'
import type { Logger } from '../../shared/log/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import type { P2PNode } from '../../shared/p2p/index.ts'
import type { ContentStore } from '../../shared/store/index.ts'
import { LiveBlob, type LiveBlobs } from '../../shared/swarm/live.ts'
import type { MapStore } from '../../shared/swarm/maps/index.ts'
import type { ChunkClient } from '../../shared/swarm/protocol/index.ts'
import { type PeerKind, seededRandom, StallClocks } from '../../shared/swarm/scheduler/index.ts'
import { rendezvousScore, type SeederRef, seederFor, seedersInOrder } from '../../shared/swarm/index.ts'
import {
  type ChunkVerifier,
  DownloadSession,
  proveResumed,
  SessionError,
  systemClock,
} from '../../shared/swarm/session/index.ts'
import type { StoreChunkSource } from '../../shared/swarm/source.ts'
import type { PartialSink } from '../blobs/fill.ts'
import type { ProviderLookups } from './lookups.ts'
import type { Announcer } from './provider.ts'
import { blobSink, blobVerifier, sessionEvents, SwarmHolders } from './session-ports.ts'

export interface SwarmOptions {
  readonly node: P2PNode
  readonly client: ChunkClient
  readonly store: ContentStore
  readonly maps: MapStore
  readonly live: LiveBlobs
  readonly source: StoreChunkSource
  readonly seeders: readonly SeederRef[]
  readonly metrics: Metrics
  readonly log: Logger
  /** No verified chunk for this long → the rest comes from the origin. */
  readonly stallTimeoutMs: number
  /** Tells the DHT which blobs this node provides: from the first verified chunk until the blob leaves the store. */
  readonly announcer: Announcer
  /** DHT provider lookups, de-duplicated and briefly cached. */
  readonly lookups: ProviderLookups
  /** This node's edge site (`--site`): same-site holders first, one member per chunk across the WAN. */
  readonly site?: string
  readonly now?: () => number
}

/** What the swarm needs to know of a wanted blob (the client's request stays with the blob service). */
export interface SwarmWant {
  readonly digest: Digest
  /** The registry and repository the seeder pulls it from, when no one holds it yet. */
  readonly registry: string
  readonly name: string
}

/** The swarm could not take this blob on (no seeder answered): the caller goes to the origin. */
export class SwarmUnavailableError extends Error {
  override name = 'SwarmUnavailableError'
  readonly code = 'SWARM_UNAVAILABLE'
}

/**
 * Fills a download from the swarm: finds the blob's trusted chunk map (or has the seeder that owns a cold blob
 * pull it, and attest each chunk), opens the partial file, and runs a DownloadSession over libp2p: providers
 * from the DHT plus peers that ask us for the same blob, every chunk proven before it touches the disk.
 */
export class Swarm {
  readonly #o: SwarmOptions
  readonly #trusted: ReadonlySet<string>
  readonly #now: () => number
  /** Peers that asked us about a blob: they are fetching it too, so they are candidates. */
  readonly #interested = new Map<Digest, Set<string>>()
  /** Peers caught lying, shared by every download: banned until the time given. */
  readonly #bans = new Map<string, number>()
  /** Every download's stall clock; bytes of any blob keep the node's byte clock going (see StallClocks). */
  readonly #stall = new StallClocks()

  constructor(opts: SwarmOptions) {
    this.#o = opts
    this.#trusted = new Set(opts.seeders.map((s) => s.id))
    this.#now = opts.now ?? Date.now
  }

  get trustedSigners(): ReadonlySet<string> {
    return this.#trusted
  }

  /** Called by the chunk source when a peer asks about a blob. */
  noteInterest(digest: Digest, peer: string): void {
    if (this.#trusted.has(peer)) return
    let set = this.#interested.get(digest)
    if (set === undefined) {
      set = new Set()
      this.#interested.set(digest, set)
    }
    set.add(peer)
  }

  async fill(dl: PartialSink, want: SwarmWant, signal: AbortSignal): Promise<void> {
    const { store, maps, live, log } = this.#o
    const digest = want.digest
    let signed = await maps.get(digest)
    if (signed === undefined) signed = await this.#findMap(digest, signal)
    let geometry: ChunkGeometry
    if (signed !== undefined) {
      geometry = signed.map
    } else {
      const seeder = seederFor(this.#o.seeders, digest)
      if (seeder === undefined) throw new SwarmUnavailableError('no seeder configured')
      try {
        geometry = await retry(
          () => this.#o.client.fetch(seeder.addr, digest, want.registry, want.name, { signal }),
          signal,
        )
      } catch (err) {
        throw new SwarmUnavailableError(`seeder ${seeder.id} did not take ${digest}: ${(err as Error).message}`, {
          cause: err,
        })
      }
    }
    const partial = await store.openPartial(digest, { size: geometry.size, chunkSize: geometry.chunkSize, signal })
    const blob = new LiveBlob(partial, signed)
    live.add(blob)
    dl.attach(partial, { verifiedPerChunk: signed !== undefined })
    // One verifier for the chunks already on disk and those still to come.
    const verifier = blobVerifier(blob, geometry, this.#trusted, (s) => this.#findMap(digest, s, 1))
    try {
      await this.#resume(blob, verifier, signal)
      await this.#exchange(blob, geometry, verifier, signal)
      await partial.commit()
      // The partial file is gone now: serve from the store before anything slower happens.
      this.#o.source.noteComplete(digest, geometry.size, geometry.chunkSize)
      live.remove(digest)
      this.#o.metrics.cacheBytes.set(store.usage().bytes)
      // Off the download's path: until fill returns, the download is still running while its partial is
      // committed, and a reader that reaches the partial then fails. A cold blob's map even costs a round trip.
      void this.#keepMap(digest, blob.map, signal)
    } finally {
      live.remove(digest)
      this.#interested.delete(digest)
    }
    log.debug({ digest }, 'swarm download complete')
  }

  /** After a restart, chunks already on disk are proven again, by the session's verifier, before they count. */
  async #resume(blob: LiveBlob, verifier: ChunkVerifier, signal: AbortSignal): Promise<void> {
    if (blob.partial.written.count === 0) return
    const attestations = new Map((await this.#o.maps.attestations(blob.digest)).map((a) => [a.index, a]))
    await proveResumed(
      {
        written: () => blob.partial.written.indexes(),
        read: (index, s) => blob.partial.readChunk(index, { signal: s }),
        attestation: (index) => attestations.get(index),
        proven: (index, attestation) => blob.markVerified(index, attestation),
      },
      verifier,
      signal,
    )
  }

  /** The swarm part proper: a download session over libp2p, the partial file and the map store. */
  async #exchange(
    blob: LiveBlob,
    geometry: ChunkGeometry,
    verifier: ChunkVerifier,
    signal: AbortSignal,
  ): Promise<void> {
    const { node, client, maps, seeders, lookups } = this.#o
    const digest = blob.digest
    const holders = new SwarmHolders({
      node,
      client,
      digest,
      geometry,
      seeders,
      trusted: this.#trusted,
      interested: () => this.#interested.get(digest) ?? [],
      lookups,
      ...(this.#o.site === undefined ? {} : { site: this.#o.site }),
    })
    const session = new DownloadSession(
      {
        clock: systemClock(this.#now),
        fetcher: holders.fetcher(),
        holders,
        verifier,
        sink: blobSink(blob, maps),
        events: sessionEvents(digest, this.#o),
      },
      {
        chunkCount: blob.partial.chunkCount,
        chunkBytes: (i) => {
          const r = chunkRange(geometry, i)
          return r.end - r.start
        },
        stallTimeoutMs: this.#o.stallTimeoutMs,
        // Each agent breaks ties its own way, so agents spread over different chunks.
        random: seededRandom(rendezvousScore(node.peerId.toString(), digest)),
        stall: this.#stall,
        bans: this.#bans,
        signal,
        ...(this.#o.site === undefined
          ? {}
          : { site: { name: this.#o.site, self: node.peerId.toString(), blob: digest } }),
      },
    )
    try {
      await session.run()
    } catch (err) {
      if (err instanceof SessionError && err.code === 'SESSION_STALLED') {
        throw new SwarmUnavailableError(err.message, { cause: err })
      }
      throw err
    }
  }

  /** A signed map from a seeder or provider, verified against the trusted seeder keys. */
  async #findMap(digest: Digest, signal: AbortSignal, attempts = 3): Promise<SignedChunkMap | undefined> {
    for (const s of seedersInOrder(this.#o.seeders, digest)) {
      try {
        const signed = await retry(
          () => this.#o.client.getMap(s.addr, digest, { signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]) }),
          signal,
          attempts,
        )
        if (signed === undefined) continue
        await verifySignedChunkMap(signed, this.#trusted)
        return signed
      } catch (err) {
        this.#o.log.debug({ seeder: s.id, digest, err: (err as Error).message }, 'no map from seeder')
      }
    }
    return undefined
  }

  /** Keeps the blob's map to serve peers later; a cold blob's, signed by the seeder once it had the whole blob. */
  async #keepMap(digest: Digest, known: SignedChunkMap | undefined, signal: AbortSignal): Promise<void> {
    try {
      const map = known ?? (await this.#findMap(digest, signal))
      if (map !== undefined) await this.#o.maps.put(map)
    } catch (err) {
      this.#o.log.debug({ digest, err: (err as Error).message }, 'chunk map not kept')
    }
  }
}

/** Connections to a busy seeder can drop while many agents dial it at once: try a few times. */
async function retry<T>(fn: () => Promise<T>, signal: AbortSignal, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (signal.aborted || i >= attempts || (err as { name?: string }).name === 'RemoteError') throw err
      await sleep(100 * i * i, undefined, { signal })
    }
  }
}

export type { PeerId, PeerKind, SeederRef }
