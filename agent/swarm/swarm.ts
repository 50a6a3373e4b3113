import type { PeerId } from '@libp2p/interface'
import { type ChunkGeometry, chunkRange, type SignedChunkMap } from '../../shared/chunks/index.ts'
import type { Logger } from '../../shared/log/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import { type Digest, DigestMismatchError } from '../../shared/oci/index.ts'
import type { P2PNode } from '../../shared/p2p/index.ts'
import type { ContentStore } from '../../shared/store/index.ts'
import { LiveBlob, type LiveBlobs } from '../../shared/swarm/live.ts'
import type { MapStore } from '../../shared/swarm/maps/index.ts'
import type { ChunkClient } from '../../shared/swarm/protocol/index.ts'
import { type PeerKind, ReceiveBudget, seededRandom, StallClocks } from '../../shared/swarm/scheduler/index.ts'
import { outsideSiteRules, rendezvousScore, type SeederRef } from '../../shared/swarm/index.ts'
import {
  type ChunkVerifier,
  DownloadSession,
  proveResumed,
  SessionError,
  type SessionSite,
  systemClock,
} from '../../shared/swarm/session/index.ts'
import type { StoreChunkSource } from '../../shared/swarm/source.ts'
import type { PartialSink } from '../blobs/fill.ts'
import { ColdDuty, type ColdInit, type SwarmWant } from './cold.ts'
import { distrust } from './distrust.ts'
import { SwarmElectedError, SwarmUnavailableError } from './errors.ts'
import type { ProviderLookups } from './lookups.ts'
import type { Announcer } from './provider.ts'
import { findSeederMap } from './seeder-maps.ts'
import { blobSink, blobVerifier, sessionEvents, SwarmHolders } from './session-ports.ts'

export interface SwarmOptions extends ColdInit {
  readonly node: P2PNode
  readonly client: ChunkClient
  readonly store: ContentStore
  readonly maps: MapStore
  readonly live: LiveBlobs
  readonly source: StoreChunkSource
  readonly seeders: readonly SeederRef[]
  readonly metrics: Metrics
  readonly log: Logger
  /** Tells the DHT which blobs this node provides: from the first verified chunk until the blob leaves the store. */
  readonly announcer: Announcer
  /** DHT provider lookups, de-duplicated and briefly cached. */
  readonly lookups: ProviderLookups
  /** This node's edge site (`--site`): same-site holders first, one member per chunk across the WAN. */
  readonly site?: string
  /** Takes back a received chunk's bytes once they are on disk (the bulk client's receive buffers). */
  readonly recycle?: (bytes: Uint8Array) => void
  readonly now?: () => number
}

/** A cold blob's fill across its tries: the partial opened by the first one is followed by the next ones. */
interface Cold {
  readonly dl: PartialSink
  readonly want: SwarmWant
  readonly signal: AbortSignal
  blob?: LiveBlob
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
  /** The download session of each blob being fetched from the swarm now (edge sites: askers join its election). */
  readonly #sessions = new Map<Digest, DownloadSession>()
  /** Peers caught lying, shared by every download: banned until the time given. */
  readonly #bans = new Map<string, number>()
  /** Every download's stall clock; bytes of any blob keep the node's byte clock going (see StallClocks). */
  readonly #stall = new StallClocks()
  /** Chunk requests in flight over every download, so one node does not hold a dozen senders' slots at once. */
  readonly #budget = new ReceiveBudget()
  /** Who pulls a cold blob from the origin for the swarm: seeders, then the agents' election. */
  readonly #cold: ColdDuty

  constructor(opts: SwarmOptions) {
    this.#o = opts
    this.#trusted = new Set(opts.seeders.map((s) => s.id))
    this.#now = opts.now ?? Date.now
    this.#cold = new ColdDuty(
      {
        ...opts,
        trusted: this.#trusted,
        banned: (peer) => this.#banned(peer),
        interested: (digest) => this.#interested.get(digest) ?? [],
        noteInterest: (digest, peer) => this.noteInterest(digest, peer),
        now: this.#now,
        startedAt: this.#now(),
      },
      opts,
    )
  }

  /**
   * Whose chunk proofs this node accepts for `digest`: a trusted seeder's; and any agent's not banned, only for a
   * blob no seeder delivered and the agents elected a puller for (peer proofs on). While a seeder serves a blob,
   * its proofs are the only ones taken.
   */
  #vouches(digest: Digest, signer: string): boolean {
    return this.#trusted.has(signer) || (this.#cold.elected(digest) && !this.#banned(signer))
  }

  #banned(peer: string): boolean {
    const until = this.#bans.get(peer)
    return until !== undefined && until > this.#now()
  }

  get trustedSigners(): ReadonlySet<string> {
    return this.#trusted
  }

  /**
   * Called by the chunk source when a peer asks about a blob, with the site its `have` request names: a same-site
   * asker is a candidate in the blob's site election at once (DownloadSession.heardFrom).
   */
  noteInterest(digest: Digest, peer: string, site?: string): void {
    if (this.#trusted.has(peer)) return
    if (site !== undefined) this.#sessions.get(digest)?.heardFrom(peer, site)
    let set = this.#interested.get(digest)
    if (set === undefined) {
      set = new Set()
      this.#interested.set(digest, set)
    }
    set.add(peer)
  }

  async fill(dl: PartialSink, want: SwarmWant, signal: AbortSignal): Promise<void> {
    const digest = want.digest
    let signed = await this.#o.maps.get(digest)
    if (signed === undefined) signed = await this.#findMap(digest, signal)
    if (signed !== undefined) return this.#run(dl, digest, signed.map, signed, signal)
    // A cold blob: someone pulls it from the origin for the swarm while we follow. One partial for every try.
    const cold: Cold = { dl, want, signal }
    try {
      await this.#cold.fill(want, (geometry, stallTimeoutMs) => this.#follow(cold, geometry, stallTimeoutMs), signal)
    } finally {
      if (cold.blob !== undefined && this.#o.live.get(digest) === cold.blob) this.#o.live.remove(digest)
    }
  }

  /** Downloads the cold blob while someone pulls it: true once committed, false when the session stalled. */
  async #follow(cold: Cold, geometry: ChunkGeometry, stallTimeoutMs = this.#o.stallTimeoutMs): Promise<boolean> {
    const b = cold.blob
    // Another size than the first puller said: one of them is wrong, and the digest will say which; not this one.
    if (b !== undefined && (b.size !== geometry.size || b.chunkSize !== geometry.chunkSize)) return false
    try {
      await this.#run(
        cold.dl,
        cold.want.digest,
        geometry,
        undefined,
        cold.signal,
        b,
        (opened) => (cold.blob = opened),
        stallTimeoutMs,
      )
      return true
    } catch (err) {
      const stalled =
        err instanceof SwarmUnavailableError &&
        (err.cause as { code?: string } | undefined)?.code === 'SESSION_STALLED' &&
        !cold.signal.aborted
      if (!stalled) throw err
      return false
    }
  }

  /**
   * Opens (or goes on with) the partial, runs the exchange, and commits once the blob matches its digest. A blob
   * proven by peers' signatures that fails its digest bans every agent that vouched for its chunks; readers that
   * took any of its bytes are aborted, and the rest comes from the origin.
   */
  async #run(
    dl: PartialSink,
    digest: Digest,
    geometry: ChunkGeometry,
    signed: SignedChunkMap | undefined,
    signal: AbortSignal,
    existing?: LiveBlob,
    opened?: (blob: LiveBlob) => void,
    stallTimeoutMs = this.#o.stallTimeoutMs,
  ): Promise<void> {
    const { store, live, log } = this.#o
    let blob = existing
    if (blob === undefined) {
      const partial = await store.openPartial(digest, { size: geometry.size, chunkSize: geometry.chunkSize, signal })
      blob = new LiveBlob(partial, signed)
      live.add(blob)
      opened?.(blob)
      // Per-chunk proofs let the last byte go out before the digest check only when a seeder signed them.
      const seederSigned = signed !== undefined && this.#trusted.has(signed.signer)
      dl.attach(partial, { verifiedPerChunk: seederSigned })
    }
    const partial = blob.partial
    // One verifier for the chunks already on disk and those still to come.
    const verifier = blobVerifier(
      blob,
      geometry,
      (signer) => this.#vouches(digest, signer),
      (s) => this.#findMap(digest, s, 1),
    )
    try {
      if (existing === undefined) await this.#resume(blob, verifier, signal)
      await this.#exchange(blob, geometry, verifier, signal, stallTimeoutMs)
      try {
        await partial.commit()
      } catch (err) {
        if (err instanceof DigestMismatchError) {
          const { maps, metrics, log } = this.#o
          distrust({ trusted: this.#trusted, bans: this.#bans, now: this.#now, maps, metrics, log }, dl, blob, err)
        }
        throw new SwarmUnavailableError(`${digest} failed its digest: ${(err as Error).message}`, { cause: err })
      }
      // The partial file is gone now: serve from the store before anything slower happens.
      this.#o.source.noteComplete(digest, geometry.size, geometry.chunkSize)
      live.remove(digest)
      this.#o.metrics.cacheBytes.set(store.usage().bytes)
      // Off the download's path: until fill returns, the download is still running while its partial is
      // committed, and a reader that reaches the partial then fails. A cold blob's map even costs a round trip.
      void this.#keepMap(digest, blob.map, signal)
    } finally {
      if (existing === undefined && opened === undefined) live.remove(digest)
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
    stallTimeoutMs = this.#o.stallTimeoutMs,
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
      now: this.#now,
      ...(this.#o.site === undefined ? {} : { site: this.#o.site }),
    })
    const session = new DownloadSession(
      {
        clock: systemClock(this.#now),
        fetcher: holders.fetcher(),
        holders,
        verifier,
        sink: blobSink(blob, maps, this.#o.recycle),
        events: sessionEvents(digest, this.#o),
      },
      {
        chunkCount: blob.partial.chunkCount,
        chunkBytes: (i) => {
          const r = chunkRange(geometry, i)
          return r.end - r.start
        },
        stallTimeoutMs,
        // Each agent breaks ties its own way, so agents spread over different chunks.
        random: seededRandom(rendezvousScore(node.peerId.toString(), digest)),
        stall: this.#stall,
        budget: this.#budget,
        bans: this.#bans,
        signal,
        ...sessionSite(this.#o.site, node.peerId.toString(), digest, geometry.size),
      },
    )
    this.#sessions.set(digest, session)
    try {
      await session.run()
    } catch (err) {
      if (err instanceof SessionError && err.code === 'SESSION_STALLED') {
        throw new SwarmUnavailableError(err.message, { cause: err })
      }
      throw err
    } finally {
      if (this.#sessions.get(digest) === session) this.#sessions.delete(digest)
    }
  }

  /** A signed map from a seeder, verified against the trusted seeder keys. */
  #findMap(digest: Digest, signal: AbortSignal, attempts = 3): Promise<SignedChunkMap | undefined> {
    return findSeederMap({ ...this.#o, trusted: this.#trusted }, digest, signal, attempts)
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

/**
 * The site part of a blob's download session: none without a site, and none for a small blob (an image's config),
 * which is fetched as if this node had no site (outsideSiteRules).
 */
export function sessionSite(
  site: string | undefined,
  self: string,
  digest: Digest,
  size: number,
): { site?: SessionSite } {
  if (site === undefined || outsideSiteRules(size)) return {}
  return { site: { name: site, self, blob: digest } }
}

export { SwarmElectedError, SwarmUnavailableError }
export type { PeerId, PeerKind, SeederRef, SwarmWant }
