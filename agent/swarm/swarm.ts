import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  type ChunkAttestation,
  type ChunkGeometry,
  chunkRange,
  type SignedChunkMap,
  verifyChunk,
  verifyChunkAttestation,
  verifySignedChunkMap,
} from '../../shared/chunks/index.ts'
import type { Logger } from '../../shared/log/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import type { P2PNode } from '../../shared/p2p/index.ts'
import type { ContentStore } from '../../shared/store/index.ts'
import {
  parsePeerAddr,
  rendezvousScore,
  type SeederRef,
  seederFor,
  seedersInOrder,
  withoutPeerId,
} from '../../shared/swarm/index.ts'
import { LiveBlob, type LiveBlobs } from '../../shared/swarm/live.ts'
import type { MapStore } from '../../shared/swarm/maps/index.ts'
import { type ChunkClient, InvalidMessageError } from '../../shared/swarm/protocol/index.ts'
import { DownloadScheduler, type PeerKind, seededRandom, StallClocks } from '../../shared/swarm/scheduler/index.ts'
import type { StoreChunkSource } from '../../shared/swarm/source.ts'
import type { BlobRef, PartialSink } from '../blobs/fill.ts'
import { HaveTracker } from '../../shared/swarm/have-tracker.ts'
import { IdleTimer } from './idle-timer.ts'
import type { ProviderLookups } from './lookups.ts'
import type { Announcer } from './provider.ts'

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
  readonly now?: () => number
}

/** The swarm could not take this blob on (no seeder answered): the caller goes to the origin. */
export class SwarmUnavailableError extends Error {
  override name = 'SwarmUnavailableError'
  readonly code = 'SWARM_UNAVAILABLE'
}

const TICK_MS = 100
const REDISCOVER_MS = 1000
const MAP_RECHECK_MS = 500
/**
 * A chunk request whose answer brings no byte for this long is dropped, whatever the scheduler thinks of the peer.
 * It is a no-progress window, not a deadline: on a thin or crowded link a 4 MiB chunk may take longer than this
 * while its bytes flow, and cutting it would throw them away (the fleet benchmark saw exactly that). The client's
 * request timeout and the scheduler's hard timeout bound the whole request.
 */
const CHUNK_IDLE_MS = 10_000

/**
 * Fills a download from the swarm: a trusted chunk map (or, for a cold blob, the seeder's
 * per-chunk attestations), providers from the DHT plus peers that ask us for the same blob,
 * the pure scheduler deciding who gets asked for what, and every chunk hashed against its
 * proof before it touches the disk. The blob is announced after its first verified chunk.
 */
export class Swarm {
  readonly #o: SwarmOptions
  readonly #trusted: ReadonlySet<string>
  readonly #now: () => number
  /** Peers that asked us about a blob: they are fetching it too, so they are candidates. */
  readonly #interested = new Map<Digest, Set<string>>()
  readonly #mapChecked = new Map<Digest, number>()
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

  async fill(dl: PartialSink, req: BlobRef, signal: AbortSignal): Promise<void> {
    const { store, maps, live, log } = this.#o
    const digest = req.digest
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
          () => this.#o.client.fetch(seeder.addr, digest, req.upstream.registry, req.name, { signal }),
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
    try {
      await this.#resume(blob, geometry, signal)
      await this.#exchange(blob, geometry, signal)
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
      this.#mapChecked.delete(digest)
    }
    log.debug({ digest }, 'swarm download complete')
  }

  /** After a restart, chunks already on disk are proven again before they count. */
  async #resume(blob: LiveBlob, geometry: ChunkGeometry, signal: AbortSignal): Promise<void> {
    if (blob.partial.written.count === 0) return
    const attestations = new Map((await this.#o.maps.attestations(blob.digest)).map((a) => [a.index, a]))
    for (const index of blob.partial.written.indexes()) {
      signal.throwIfAborted()
      const bytes = await blob.partial.readChunk(index)
      const proof = blob.map?.map.chunks[index] ?? attestations.get(index)?.chunk
      if (proof === undefined) continue
      try {
        verifyChunk(geometry, index, proof, bytes)
        blob.markVerified(index, attestations.get(index))
      } catch {
        // Not provable: fetched again (writeChunk of a written chunk is a no-op, so it is simply skipped
        // by the scheduler only once verified).
      }
    }
  }

  async #exchange(blob: LiveBlob, geometry: ChunkGeometry, outer: AbortSignal): Promise<void> {
    const { client, metrics, log, node } = this.#o
    const digest = blob.digest
    const ac = new AbortController()
    const signal = AbortSignal.any([outer, ac.signal])
    for (const [peer, until] of this.#bans) if (until <= this.#now()) this.#bans.delete(peer)
    const sched = new DownloadScheduler({
      bans: this.#bans,
      chunkCount: blob.partial.chunkCount,
      chunkBytes: (i) => {
        const r = chunkRange(geometry, i)
        return r.end - r.start
      },
      // Late requests must move well before the stall timeout sends the blob to the origin.
      requestTimeoutMs: Math.max(1000, Math.floor(this.#o.stallTimeoutMs / 4)),
      hardTimeoutMs: Math.max(2000, Math.floor(this.#o.stallTimeoutMs / 2)),
      // Each agent breaks ties its own way, so agents spread over different chunks.
      random: seededRandom(rendezvousScore(node.peerId.toString(), digest)),
    })
    for (const i of blob.verified.indexes()) sched.markHave(i, this.#now())
    let wake: (() => void) | undefined
    const poke = () => {
      const w = wake
      wake = undefined
      w?.()
    }
    const tracker = new HaveTracker({
      client,
      digest,
      geometry,
      signal,
      onHave: (peer, kind, bitfield, first) => {
        if (first) sched.addPeer(peer, kind, bitfield)
        else for (const i of bitfield.indexes()) sched.peerHas(peer, i)
        poke()
      },
      onGone: (peer) => {
        sched.removePeer(peer, this.#now())
        poke()
      },
      onPeers: (addrs) => this.#meet(addrs, tracker),
    })
    for (const s of this.#o.seeders) tracker.track(s.id, s.addr, 'seeder')
    const inflight = new Map<string, AbortController>()
    const writes = new Map<number, Promise<void>>()
    let provided = false
    /** Last verified chunk, and last byte received at all: either going quiet for long enough ends the exchange. */
    const clock = this.#stall.start(this.#now())
    let lastDiscovery = 0
    let failure: unknown

    const request = async (peer: string, index: number): Promise<void> => {
      const key = `${peer}/${index}`
      const rc = new AbortController()
      inflight.set(key, rc)
      const kind = tracker.kind(peer)
      let outcome: 'ok' | 'bad' | 'failed' | 'busy' = 'failed'
      const idle = new IdleTimer(CHUNK_IDLE_MS)
      try {
        const r = chunkRange(geometry, index)
        const res = await client.getChunk(tracker.target(peer), digest, index, {
          maxBytes: r.end - r.start,
          signal: AbortSignal.any([signal, rc.signal, idle.signal]),
          onProgress: () => {
            const now = this.#now()
            idle.touch()
            clock.byte(now)
            sched.onProgress(peer, now)
          },
        })
        idle.stop()
        if (res === 'busy') outcome = 'busy'
        else if (res === 'none') outcome = 'failed'
        else {
          const proof = await this.#prove(blob, geometry, index, res.attestation, signal)
          if (proof === undefined) {
            // Nothing to check it against (yet): not a lie, but not usable either.
            metrics.chunksRejected.inc({ reason: 'unproven' })
            return
          }
          if (proof === 'forged') {
            outcome = 'bad'
            metrics.chunksRejected.inc({ reason: 'forged' })
            log.warn({ peer, digest, index }, 'chunk attestation not from a trusted seeder, banning peer')
            return
          }
          try {
            verifyChunk(geometry, index, proof.chunk, res.bytes)
          } catch (err) {
            outcome = 'bad'
            metrics.chunksRejected.inc({ reason: 'hash' })
            log.warn({ peer, digest, index, err: (err as Error).message }, 'rejected chunk, banning peer')
            return
          }
          // Endgame copies of one chunk may both arrive: only the first is written and counted, and the
          // second waits for that write, so the scheduler never counts a chunk that is not on disk yet.
          const pendingWrite = writes.get(index)
          if (pendingWrite !== undefined) await pendingWrite
          else if (!blob.verified.has(index)) {
            const write = (async () => {
              await blob.partial.writeChunk(index, res.bytes)
              if (proof.attestation !== undefined) await this.#o.maps.putAttestation(proof.attestation)
              blob.markVerified(index, proof.attestation)
            })()
            writes.set(index, write)
            try {
              await write
            } finally {
              writes.delete(index)
            }
            metrics.bytesReceived.inc({ source: kind === 'seeder' ? 'seeder' : 'peer' }, res.bytes.byteLength)
            clock.verified(this.#now())
            if (!provided) {
              provided = true
              this.#o.announcer.announce(digest)
            }
          }
          outcome = 'ok'
        }
      } catch (err) {
        if (rc.signal.aborted || signal.aborted) return
        if (err instanceof InvalidMessageError) {
          // A malformed or mismatched answer (oversized, wrong chunk, another blob's attestation) is a lie, not
          // a hiccup: banned like a bad hash. A peer that only hangs up is merely failed.
          outcome = 'bad'
          metrics.chunksRejected.inc({ reason: 'malformed' })
          log.warn({ peer, digest, index, err: err.message }, 'malformed chunk answer, banning peer')
          return
        }
        log.debug({ peer, digest, index, err: (err as Error).message }, 'chunk request failed')
      } finally {
        idle.stop()
        inflight.delete(key)
        if (!rc.signal.aborted && !signal.aborted) {
          const { cancel } = sched.onChunk(peer, index, this.#now(), outcome)
          for (const c of cancel) inflight.get(`${c.peer}/${c.index}`)?.abort()
        }
        poke()
      }
    }

    try {
      while (!sched.done) {
        signal.throwIfAborted()
        const now = this.#now()
        if (now - lastDiscovery >= REDISCOVER_MS) {
          lastDiscovery = now
          void this.#discover(digest, tracker, signal)
        }
        for (const t of sched.tick(now).timedOut) inflight.get(`${t.peer}/${t.index}`)?.abort()
        for (const r of sched.next(now)) void request(r.peer, r.index)
        if (clock.stalledMs(now) > this.#o.stallTimeoutMs) {
          const peers = sched
            .peerStats()
            .map((p) => `${p.id.slice(-6)}:${p.kind}:inflight=${p.inflight}:banned=${p.banned}:backoff=${p.backoff}`)
          failure = new SwarmUnavailableError(
            `no chunk byte for ${clock.sinceByte(now)} ms, no verified chunk for ${clock.sinceVerified(now)} ms (missing ${sched.missing}, unavailable ${sched.unavailable(now)}, peers ${peers.join(' ')})`,
          )
          break
        }
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(poke, TICK_MS)
        })
      }
      await Promise.allSettled(writes.values())
    } finally {
      ac.abort()
      tracker.stop()
    }
    if (failure !== undefined) throw failure
  }

  /**
   * The proof a chunk must match: the trusted map's entry, or a trusted seeder's attestation. `'forged'` when the
   * peer sent an attestation that does not verify; undefined when there is nothing to check against yet.
   */
  async #prove(
    blob: LiveBlob,
    geometry: ChunkGeometry,
    index: number,
    attestation: ChunkAttestation | undefined,
    signal: AbortSignal,
  ): Promise<{ chunk: string; attestation?: ChunkAttestation } | 'forged' | undefined> {
    const fromMap = blob.map?.map.chunks[index]
    if (fromMap !== undefined) return { chunk: fromMap }
    if (attestation === undefined) {
      // A cold blob the seeder has finished meanwhile: its signed map now proves every chunk.
      const now = this.#now()
      if (now - (this.#mapChecked.get(blob.digest) ?? 0) < MAP_RECHECK_MS) return undefined
      this.#mapChecked.set(blob.digest, now)
      const signed = await this.#findMap(blob.digest, AbortSignal.any([signal, AbortSignal.timeout(2000)]), 1)
      if (signed === undefined || signed.map.size !== geometry.size || signed.map.chunkSize !== geometry.chunkSize) {
        return undefined
      }
      blob.map = signed
      return { chunk: signed.map.chunks[index]! }
    }
    try {
      await verifyChunkAttestation(attestation, this.#trusted, {
        digest: blob.digest,
        size: geometry.size,
        chunkSize: geometry.chunkSize,
        index,
      })
    } catch {
      // Not signed by a trusted seeder, or not for this chunk of this blob: a proof that proves nothing is a lie.
      return 'forged'
    }
    return { chunk: attestation.chunk, attestation }
  }

  /** Peer hints from a seeder: remember their addresses and start asking them what they hold. */
  #meet(addrs: readonly string[], tracker: HaveTracker): void {
    const self = this.#o.node.peerId.toString()
    for (const a of addrs) {
      const ref = parsePeerAddr(a)
      if (ref === undefined) continue
      const id = ref.id
      if (id === self || this.#trusted.has(id) || tracker.knows(id)) continue
      let peerId: PeerId
      try {
        peerId = peerIdFromString(id)
      } catch {
        continue
      }
      // Requests by PeerId reuse one connection; the address only needs to reach the peer store.
      void this.#o.node.peerStore
        .merge(peerId, { multiaddrs: [withoutPeerId(ref.addr)] })
        .then(() => tracker.track(id, peerId, 'peer'))
        .catch(() => {})
    }
  }

  async #discover(digest: Digest, tracker: HaveTracker, signal: AbortSignal): Promise<void> {
    // A seeder whose have-loop ended on a dropped connection is picked up again here.
    for (const s of this.#o.seeders) tracker.track(s.id, s.addr, 'seeder')
    for (const peer of this.#interested.get(digest) ?? []) tracker.trackId(peer, 'peer')
    const self = this.#o.node.peerId.toString()
    // Joins a lookup under way for this blob, or reuses one that just finished (the DHT routing already put
    // the providers' addresses in the peer store).
    await this.#o.lookups
      .lookup(
        digest,
        (p) => {
          const id = p.id.toString()
          if (id !== self && !this.#trusted.has(id)) tracker.trackId(id, 'peer', p.id)
        },
        { signal },
      )
      .catch(() => {})
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

export type { PeerId, PeerKind }
