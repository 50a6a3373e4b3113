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
import { CHUNK_PROTOCOL, type ChunkClient } from '../../shared/swarm/protocol/index.ts'
import { DEFAULT_BAN_MS, type PeerKind, seededRandom, StallClocks } from '../../shared/swarm/scheduler/index.ts'
import { rendezvousOrder, rendezvousScore, type SeederRef, seedersInOrder, turn } from '../../shared/swarm/index.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { DigestMismatchError } from '../../shared/oci/index.ts'
import { blobCid } from '../../shared/p2p/index.ts'
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
  /**
   * Peer proofs (`--swarm-key` or `--trust-peer-maps`): when no seeder answers for a blob, the agents elect one of
   * themselves to pull it from the origin and accept the chunk proofs it signs. Off: no seeder, no swarm.
   */
  readonly peerProofs?: boolean
  /**
   * A node this young waits until it is this old before it elects a puller: the peers it dialled at start are
   * connected by then, so nodes started together count the same candidates (default ELECTION_SETTLE_MS).
   */
  readonly electionSettleMs?: number
  /** See ELECTION_CLAIM_MS. */
  readonly electionClaimMs?: number
  /** See ELECTION_ALONE_WAIT_MS. */
  readonly electionAloneWaitMs?: number
  readonly now?: () => number
}

/** See SwarmOptions.electionSettleMs: about two DHT round trips plus the identify exchange on a loaded LAN. */
export const ELECTION_SETTLE_MS = 2000
/**
 * How long an elected peer may take to answer `fetch` (it answers once the puller at the end of its chain has the
 * origin's headers): a candidate known only from the DHT may be long gone, and its dial must not hold up the next.
 */
export const ELECTED_FETCH_TIMEOUT_MS = 10_000
/**
 * A node that ranks itself first announces the blob and looks again after this long (see #fromElected): a DHT
 * provide and a lookup on a loaded LAN take about a second.
 */
export const ELECTION_CLAIM_MS = 1500
/** See Swarm #settle: past one bootstrap retry interval (BOOTSTRAP_RETRY_INTERVAL_MS, 15 s). */
export const ELECTION_ALONE_WAIT_MS = 20_000
const ELECTION_ALONE_RETRY_MS = 1000
/** The DHT query for the peers closest to a blob's key: a few round trips on a LAN. */
const ELECTION_LOOKUP_MS = 2000

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
  readonly code: 'SWARM_UNAVAILABLE' | 'SWARM_ELECTED' = 'SWARM_UNAVAILABLE'
}

/** A cold blob's fill across its tries: the partial opened by the first one is followed by the next ones. */
interface Cold {
  readonly dl: PartialSink
  readonly want: SwarmWant
  readonly signal: AbortSignal
  blob?: LiveBlob
}

/** This agent is the one elected to pull the blob from the origin for its peers (peer proofs). */
export class SwarmElectedError extends SwarmUnavailableError {
  override name = 'SwarmElectedError'
  override readonly code = 'SWARM_ELECTED'
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

  readonly #startedAt: number
  /** Blobs being filled by the election among agents: peers' proofs count for them. */
  readonly #elected = new Set<Digest>()

  constructor(opts: SwarmOptions) {
    this.#o = opts
    this.#trusted = new Set(opts.seeders.map((s) => s.id))
    this.#now = opts.now ?? Date.now
    this.#startedAt = this.#now()
  }

  /**
   * Whose chunk proofs this node accepts for `digest`: a trusted seeder's; and any agent's not banned, only for a
   * blob no seeder delivered and the agents elected a puller for (peer proofs on). While a seeder serves a blob,
   * its proofs are the only ones taken.
   */
  #vouches(digest: Digest, signer: string): boolean {
    return this.#trusted.has(signer) || (this.#elected.has(digest) && !this.#banned(signer))
  }

  #banned(peer: string): boolean {
    const until = this.#bans.get(peer)
    return until !== undefined && until > this.#now()
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
    const digest = want.digest
    let signed = await this.#o.maps.get(digest)
    if (signed === undefined) signed = await this.#findMap(digest, signal)
    if (signed !== undefined) return this.#run(dl, digest, signed.map, signed, signal)
    // A cold blob: someone pulls it from the origin for the swarm while we follow. One partial for every try.
    const cold: Cold = { dl, want, signal }
    try {
      if (await this.#fromSeeders(cold)) return
      if (this.#o.peerProofs !== true) {
        throw new SwarmUnavailableError(
          this.#o.seeders.length === 0 ? 'no seeder configured' : `no seeder took ${digest}`,
        )
      }
      await this.#fromElected(cold)
    } finally {
      this.#elected.delete(digest)
      if (cold.blob !== undefined && this.#o.live.get(digest) === cold.blob) this.#o.live.remove(digest)
    }
  }

  /**
   * The seeders in rendezvous order are asked to pull the blob, the owner first. One that is down or refuses, or
   * that took it and then shows no progress for a stall timeout (it died mid-pull), passes the duty to the next:
   * the origin sends the blob once more at most, not once per agent. False when none delivered.
   */
  async #fromSeeders(cold: Cold): Promise<boolean> {
    const { digest } = cold.want
    for (const seeder of seedersInOrder(this.#o.seeders, digest)) {
      let geometry: ChunkGeometry
      try {
        geometry = await retry(
          () => this.#o.client.fetch(seeder.addr, digest, cold.want.registry, cold.want.name, { signal: cold.signal }),
          cold.signal,
        )
      } catch (err) {
        cold.signal.throwIfAborted()
        this.#o.log.warn({ seeder: seeder.id, digest, err: (err as Error).message }, 'seeder did not take blob')
        continue
      }
      if (await this.#follow(cold, geometry)) return true
      this.#o.log.warn({ seeder: seeder.id, digest }, 'seeder stalled, asking the next one')
    }
    return false
  }

  /**
   * The election among agents (peer proofs on, no seeder delivered). The candidates are this node, the peers it is
   * connected to, the DHT providers of the blob and the peers that asked it about the blob (seeders and banned
   * peers excluded); every node ranks them by the one rendezvous rule. The one ranked first pulls the blob from the
   * origin (SwarmElectedError: the caller's origin pull, which signs each chunk as it lands); the others ask it to
   * (`fetch`) and download from it and from each other meanwhile. A candidate that refuses, cannot be reached or
   * shows no progress for a stall timeout is passed over for the next one (`turn`).
   */
  async #fromElected(cold: Cold): Promise<void> {
    const { node, client, log } = this.#o
    const { want, signal } = cold
    const digest = want.digest
    const self = node.peerId.toString()
    await this.#settle(signal)
    this.#elected.add(digest)
    const down = new Set<string>()
    // Only a young node claims first: an older one's DHT has long met the swarm.
    let claimed = this.#now() - this.#startedAt > (this.#o.electionAloneWaitMs ?? ELECTION_ALONE_WAIT_MS)
    for (;;) {
      const order = rendezvousOrder([self, ...(await this.#candidates(digest, signal))], digest)
      const { acting } = turn(order, { down })
      if ((acting === undefined || acting === self) && !claimed) {
        // Ranked first among the peers this node knows, which may be few just after start. The claim: announce the
        // blob in the DHT, wait for the others' announcements to land, and look again. Every node that ranked
        // itself first does the same, so they all see each other's records, and all but the highest ranked
        // follow it instead.
        claimed = true
        this.#o.announcer.announce(digest)
        await sleep(this.#o.electionClaimMs ?? ELECTION_CLAIM_MS, undefined, { signal })
        continue
      }
      if (acting === undefined || acting === self) {
        log.debug({ digest, candidates: order.length }, 'elected to pull blob from origin')
        throw new SwarmElectedError(`this agent pulls ${digest} for its peers`)
      }
      let geometry: ChunkGeometry
      try {
        // A loaded peer may time out a handshake: tried a few times, unless it refuses.
        geometry = await retry(
          () =>
            client.fetch(peerIdFromString(acting), digest, want.registry, want.name, {
              signal: AbortSignal.any([
                signal,
                AbortSignal.timeout(Math.min(this.#o.stallTimeoutMs, ELECTED_FETCH_TIMEOUT_MS)),
              ]),
            }),
          signal,
        )
      } catch (err) {
        signal.throwIfAborted()
        log.debug({ digest, peer: acting, err: (err as Error).message }, 'elected peer did not take blob')
        down.add(acting)
        continue
      }
      // Followed from the start: its DHT record may take longer than its first chunks.
      this.noteInterest(digest, acting)
      // The k-th candidate to act may itself have been following the k before it until they stalled out: it gets
      // that long to take over, plus one stall timeout of its own.
      if (await this.#follow(cold, geometry, (1 + down.size) * this.#o.stallTimeoutMs)) return
      log.info({ digest, peer: acting }, 'elected peer stalled, the next one takes over')
      down.add(acting)
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
   * The bounded wait before an election, so nodes started together count the same candidates: until the node is
   * ELECTION_SETTLE_MS old, and while it has no peer at all (its bootstrap peers were not up yet when it started)
   * until it finds one, dialling them again every second, for at most ELECTION_ALONE_WAIT_MS of its life. A node
   * that is alone after that is alone: it pulls for itself.
   */
  async #settle(signal: AbortSignal): Promise<void> {
    const { node } = this.#o
    const settleMs = this.#o.electionSettleMs ?? ELECTION_SETTLE_MS
    const settle = this.#startedAt + settleMs - this.#now()
    if (settle > 0) await sleep(settle, undefined, { signal })
    const aloneUntil = this.#startedAt + (this.#o.electionAloneWaitMs ?? ELECTION_ALONE_WAIT_MS)
    let wasAlone = false
    while (node.getPeers().length === 0 && this.#now() < aloneUntil) {
      wasAlone = true
      await node.services.bootstrap.bootstrap({ signal }).catch(() => {})
      if (node.getPeers().length > 0) break
      await sleep(ELECTION_ALONE_RETRY_MS, undefined, { signal })
    }
    // Just connected: its DHT learns of the others from the first answers, as at start.
    if (wasAlone && node.getPeers().length > 0) await sleep(settleMs, undefined, { signal })
  }

  /** Who else may pull `digest` for the swarm, as this node knows them now. */
  async #candidates(digest: Digest, signal: AbortSignal): Promise<string[]> {
    const { node, lookups } = this.#o
    const self = node.peerId.toString()
    const ids = new Set<string>()
    for (const p of node.getPeers()) ids.add(p.toString())
    // Peers the DHT told us about (its lookups fill the peer store), connected or not: nodes started together are
    // each connected to a few, but every one's self-lookup learns of the rest through the bootstrap node.
    for (const p of await node.peerStore.all()) {
      if (p.addresses.length === 0) continue
      // Identified as something that does not speak the chunk protocol: not a Shoal node.
      if (p.protocols.length > 0 && !p.protocols.includes(CHUNK_PROTOCOL)) continue
      ids.add(p.id.toString())
    }
    for (const p of this.#interested.get(digest) ?? []) ids.add(p)
    // The peers closest to the blob's key in the DHT: every node that asks gets about the same ones, whoever it
    // knew before (all of them in a swarm of up to K = 20 nodes).
    const closest = (async () => {
      const bounded = AbortSignal.any([signal, AbortSignal.timeout(ELECTION_LOOKUP_MS)])
      for await (const p of node.peerRouting.getClosestPeers(blobCid(digest).multihash.bytes, { signal: bounded }))
        ids.add(p.id.toString())
    })().catch(() => {})
    await Promise.all([lookups.lookup(digest, (p) => ids.add(p.id.toString()), { signal }).catch(() => {}), closest])
    return [...ids].filter((id) => id !== self && !this.#trusted.has(id) && !this.#banned(id))
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
        if (err instanceof DigestMismatchError) this.#distrust(dl, blob, err)
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

  /**
   * The blob's bytes were proven chunk by chunk yet fail the blob digest: someone who signed a proof lied. Agents
   * that signed any are banned (a seeder's word is not overruled by a digest an agent may have mangled itself:
   * their chunks came from the same peers), the partial goes, and its readers with it.
   */
  #distrust(dl: PartialSink, blob: LiveBlob, err: DigestMismatchError): void {
    const signers = new Set([...blob.attestations.values()].map((a) => a.signer))
    if (blob.map !== undefined) signers.add(blob.map.signer)
    for (const s of signers) {
      if (this.#trusted.has(s)) continue
      this.#bans.set(s, this.#now() + DEFAULT_BAN_MS)
      this.#o.log.warn({ digest: blob.digest, signer: s }, 'chunk proofs of a blob that failed its digest, banning')
    }
    this.#o.metrics.digestFailures.inc({ source: 'peer' })
    dl.distrust?.(blob.partial, err)
    void blob.partial.discard().catch(() => {})
    void this.#o.maps.delete(blob.digest).catch(() => {})
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
        stallTimeoutMs,
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
