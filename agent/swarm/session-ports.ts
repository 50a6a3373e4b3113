import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  type ChunkGeometry,
  type SignedChunkMap,
  verifyChunk,
  verifyChunkAttestation,
} from '../../shared/chunks/index.ts'
import type { Logger } from '../../shared/log/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import type { P2PNode } from '../../shared/p2p/index.ts'
import { HaveTracker } from '../../shared/swarm/have-tracker.ts'
import type { LiveBlob } from '../../shared/swarm/live.ts'
import type { MapStore } from '../../shared/swarm/maps/index.ts'
import { type ChunkClient, InvalidMessageError } from '../../shared/swarm/protocol/index.ts'
import type {
  ChunkFetcher,
  ChunkVerifier,
  HaveSink,
  HolderSource,
  PartialSink,
  SessionEvents,
} from '../../shared/swarm/session/index.ts'
import type { ProviderLookups } from './lookups.ts'
import type { Announcer } from './provider.ts'
import { parsePeerAddr, type SeederRef, withoutPeerId } from '../../shared/swarm/index.ts'
import { LookupPacer } from '../../shared/swarm/lookup-pacer.ts'

// The download session's collaborators over libp2p, the chunk store and the map store.

export interface HolderInit {
  readonly node: P2PNode
  readonly client: ChunkClient
  readonly digest: Digest
  readonly geometry: ChunkGeometry
  readonly seeders: readonly SeederRef[]
  readonly trusted: ReadonlySet<string>
  /** Peers that asked us about the blob: they are fetching it too. */
  readonly interested: () => Iterable<string>
  readonly lookups: ProviderLookups
  /** This node's edge site, told to every holder asked. */
  readonly site?: string
  /** Epoch ms (default Date.now). */
  readonly now?: () => number
}

/** Seeders, DHT providers and peers that asked us, each followed by a `have` long poll. */
export class SwarmHolders implements HolderSource {
  readonly #i: HolderInit
  #tracker: HaveTracker | undefined
  /** When this blob's providers may be looked up in the DHT again. */
  readonly #pacer: LookupPacer

  constructor(init: HolderInit) {
    this.#i = init
    this.#pacer = new LookupPacer({ inSite: init.site !== undefined, followsSeeder: init.seeders.length > 0 })
  }

  follow(sink: HaveSink, signal: AbortSignal): void {
    const tracker = new HaveTracker({
      client: this.#i.client,
      digest: this.#i.digest,
      geometry: this.#i.geometry,
      signal,
      ...(this.#i.site === undefined ? {} : { site: this.#i.site }),
      onHave: (peer, kind, bitfield, first, site) => {
        if (first) sink.addPeer(peer, kind, bitfield, site)
        else for (const i of bitfield.indexes()) sink.peerHas(peer, i)
      },
      onGone: (peer) => {
        sink.removePeer(peer)
        this.#pacer.lost()
      },
      onPeers: (addrs) => this.#meet(addrs, tracker),
    })
    this.#tracker = tracker
    signal.addEventListener('abort', () => tracker.stop(), { once: true })
    for (const s of this.#i.seeders) tracker.track(s.id, s.addr, 'seeder')
  }

  discover(signal: AbortSignal): void {
    if (this.#tracker !== undefined) void this.#discover(this.#tracker, signal)
  }

  /** Fetches chunks from followed holders. */
  fetcher(): ChunkFetcher {
    const { client, digest } = this.#i
    return {
      fetch: (call) => {
        const rc = new AbortController()
        void (async () => {
          try {
            const res = await client.getChunk(this.#tracker!.target(call.peer), digest, call.index, {
              maxBytes: call.maxBytes,
              signal: rc.signal,
              onProgress: () => call.progress(),
            })
            if (res === 'busy' || res === 'none') call.settle({ kind: res })
            else call.settle({ kind: 'chunk', bytes: res.bytes, attestation: res.attestation })
          } catch (err) {
            // A malformed or mismatched answer (oversized, wrong chunk, another blob's attestation) is a lie, not a
            // hiccup. A peer that only hangs up is merely failed.
            call.settle(
              err instanceof InvalidMessageError
                ? { kind: 'malformed', error: err }
                : { kind: 'failed', error: err as Error },
            )
          }
        })()
        return rc
      },
    }
  }

  async #discover(tracker: HaveTracker, signal: AbortSignal): Promise<void> {
    const { seeders, node, lookups, digest, trusted } = this.#i
    // A seeder whose have-loop ended on a dropped connection is picked up again here.
    for (const s of seeders) tracker.track(s.id, s.addr, 'seeder')
    for (const peer of this.#i.interested()) tracker.trackId(peer, 'peer')
    const self = node.peerId.toString()
    if (!this.#pacer.start(this.#now())) return
    let fresh = 0
    // Joins a lookup under way for this blob, or reuses one that just finished (the DHT routing already put
    // the providers' addresses in the peer store).
    await lookups
      .lookup(
        digest,
        (p) => {
          const id = p.id.toString()
          if (id === self || trusted.has(id) || tracker.knows(id)) return
          tracker.trackId(id, 'peer', p.id)
          if (tracker.knows(id)) fresh++
        },
        { signal },
      )
      .catch(() => {})
    this.#pacer.finished(fresh, this.#now())
  }

  #now(): number {
    return (this.#i.now ?? Date.now)()
  }

  /** Peer hints from a seeder: remember their addresses and start asking them what they hold. */
  #meet(addrs: readonly string[], tracker: HaveTracker): void {
    const { node, trusted } = this.#i
    const self = node.peerId.toString()
    for (const a of addrs) {
      const ref = parsePeerAddr(a)
      if (ref === undefined) continue
      const { id, addr: ma } = ref
      if (id === self || trusted.has(id) || tracker.knows(id)) continue
      let peerId: PeerId
      try {
        peerId = peerIdFromString(id)
      } catch {
        continue
      }
      // Requests by PeerId reuse one connection; the address only needs to reach the peer store.
      void node.peerStore
        .merge(peerId, { multiaddrs: [withoutPeerId(ma)] })
        .then(() => tracker.track(id, peerId, 'peer'))
        .catch(() => {})
    }
  }
}

/**
 * Chunks are proven by the blob's trusted map, or by an attestation whose signer `vouches` says this node believes
 * (a trusted seeder's; with peer proofs, an elected agent's too).
 */
export function blobVerifier(
  blob: LiveBlob,
  geometry: ChunkGeometry,
  vouches: (signer: string) => boolean,
  findMap: (signal: AbortSignal) => Promise<SignedChunkMap | undefined>,
): ChunkVerifier {
  return {
    fromMap: (index) => blob.map?.map.chunks[index],
    async recheckMap({ signal, timeoutMs }) {
      const signed = await findMap(AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]))
      if (signed === undefined || signed.map.size !== geometry.size || signed.map.chunkSize !== geometry.chunkSize) {
        return false
      }
      blob.map = signed
      return true
    },
    async attested(attestation, index) {
      try {
        if (!vouches(attestation.signer)) return false
        await verifyChunkAttestation(attestation, new Set([attestation.signer]), {
          digest: blob.digest,
          size: geometry.size,
          chunkSize: geometry.chunkSize,
          index,
        })
        return true
      } catch {
        return false
      }
    },
    check: (index, chunk, bytes) => verifyChunk(geometry, index, chunk, bytes),
  }
}

/**
 * Proven chunks go to the partial file, their attestations to the map store, then they are servable. Once written
 * (and let go by a client sent them as they landed), the chunk's bytes are given to `recycle` (nothing reads them
 * again: the partial was written and hashed from them).
 */
export function blobSink(blob: LiveBlob, maps: MapStore, recycle?: (bytes: Uint8Array) => void): PartialSink {
  return {
    has: (index) => blob.verified.has(index),
    verified: () => blob.verified.indexes(),
    async write(index, bytes, attestation) {
      // Lent to the followers at the chunk's offset (a client being sent the blob): recycled once they let go.
      let released: Promise<void> | undefined
      await blob.partial.writeChunk(index, bytes, { lent: (r) => (released = r) })
      if (recycle !== undefined) {
        if (released === undefined) recycle(bytes)
        else void released.then(() => recycle(bytes))
      }
      if (attestation !== undefined) await maps.putAttestation(attestation)
      blob.markVerified(index, attestation)
    },
  }
}

/** Metrics and logs of a session; the blob is announced after its first verified chunk. */
export function sessionEvents(
  digest: Digest,
  deps: { readonly metrics: Metrics; readonly log: Logger; readonly announcer: Announcer },
): SessionEvents {
  const { metrics, log, announcer } = deps
  return {
    firstChunk: () => announcer.announce(digest),
    received: (peer, kind, index, bytes) => {
      metrics.bytesReceived.inc({ source: kind === 'seeder' ? 'seeder' : 'peer' }, bytes)
      // Who sent which chunk: with sites, what tells a chunk that crossed into a site twice from its relays.
      log.debug({ peer, digest, index, bytes }, 'chunk received')
    },
    rejected(peer, index, reason, err) {
      metrics.chunksRejected.inc({ reason })
      if (reason === 'forged')
        log.warn({ peer, digest, index }, 'chunk attestation not from a trusted seeder, banning peer')
      else if (reason === 'hash') log.warn({ peer, digest, index, err: err?.message }, 'rejected chunk, banning peer')
      else if (reason === 'malformed')
        log.warn({ peer, digest, index, err: err?.message }, 'malformed chunk answer, banning peer')
    },
    failed: (peer, index, err) => log.debug({ peer, digest, index, err: err.message }, 'chunk request failed'),
    outside: (peer, index, candidates) =>
      log.debug({ peer, digest, index, candidates }, 'chunk asked outside the site'),
  }
}
