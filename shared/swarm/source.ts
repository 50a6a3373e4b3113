import type { ChunkAttestation } from '../chunks/attestation.ts'
import { Bitfield } from '../chunks/bitfield.ts'
import { chunkCount, chunkRange } from '../chunks/chunk-map.ts'
import type { SignedChunkMap } from '../chunks/signed-map.ts'
import type { Digest } from '../oci/digest.ts'
import type { ContentStore } from '../store/index.ts'
import type { LiveBlob, LiveBlobs } from './live.ts'
import type { MapStore } from './maps/index.ts'
import type { ChunkSource, RequestContext, SourceHave } from './serve/index.ts'

export interface StoreChunkSourceInit {
  readonly store: ContentStore
  readonly maps: MapStore
  readonly live: LiveBlobs
  /** The swarm's chunk size, for complete blobs whose map this node does not hold. */
  readonly chunkSize: number
  /** A seeder narrows what each peer is told it holds (super-seeding); agents tell the truth. */
  readonly advertise?: (digest: Digest, have: SourceHave, ctx: RequestContext | undefined) => Bitfield
  readonly fetch?: ChunkSource['fetch']
  /** A seeder names other peers fetching the blob (tracker hints). */
  readonly peersFor?: (digest: Digest, ctx: RequestContext | undefined) => readonly string[]
}

export const ADVERTISE_RECHECK_MS = 200
const ATTESTATION_CACHE_BLOBS = 64

interface Complete {
  readonly size: number
  readonly chunkSize: number
}

/**
 * Serves a node's verified chunks to the swarm: complete blobs from the content store, blobs in
 * flight from the live registry (verified chunks only). `have` must answer synchronously, so the
 * sizes of complete blobs are kept in memory, loaded at start and updated on commit and eviction.
 */
export class StoreChunkSource implements ChunkSource {
  readonly #i: StoreChunkSourceInit
  readonly #complete = new Map<Digest, Complete>()
  readonly #attestations = new Map<Digest, Map<number, ChunkAttestation>>()
  /** Long polls on a narrowed answer, per blob, with the peer each answers: woken by readvertise. */
  readonly #narrowed = new Map<Digest, Set<{ readonly peer: string | undefined; readonly wake: () => void }>>()
  readonly fetch: ChunkSource['fetch']

  constructor(init: StoreChunkSourceInit) {
    this.#i = init
    this.fetch = init.fetch
  }

  /** Loads the sizes of every complete blob (call once at start). */
  async load(): Promise<void> {
    for await (const info of this.#i.store.list()) {
      const map = await this.#i.maps.get(info.digest)
      this.#complete.set(info.digest, { size: info.size, chunkSize: map?.map.chunkSize ?? this.#i.chunkSize })
    }
  }

  noteComplete(digest: Digest, size: number, chunkSize: number): void {
    this.#complete.set(digest, { size, chunkSize })
    this.#attestations.delete(digest)
  }

  noteRemoved(digest: Digest): void {
    this.#complete.delete(digest)
  }

  holds(digest: Digest): boolean {
    return this.#complete.has(digest) || this.#i.live.get(digest) !== undefined
  }

  async map(digest: Digest): Promise<SignedChunkMap | undefined> {
    return this.#i.live.get(digest)?.map ?? (await this.#i.maps.get(digest))
  }

  have(digest: Digest, ctx?: RequestContext): SourceHave | undefined {
    const live = this.#i.live.get(digest)
    let have: SourceHave | undefined
    if (live !== undefined) {
      have = { size: live.size, chunkSize: live.chunkSize, bitfield: live.verified.clone(), complete: false }
    } else {
      const c = this.#complete.get(digest)
      if (c === undefined) return undefined
      have = {
        size: c.size,
        chunkSize: c.chunkSize,
        bitfield: Bitfield.full(chunkCount(c.size, c.chunkSize)),
        complete: true,
      }
    }
    const peers = this.#i.peersFor?.(digest, ctx)
    if (peers !== undefined && peers.length > 0) have = { ...have, peers }
    if (this.#i.advertise === undefined) return have
    const bitfield = this.#i.advertise(digest, have, ctx)
    // A narrowed answer is never "complete": the peer must keep asking to hear of the rest.
    return { ...have, bitfield, complete: have.complete && bitfield.count === have.bitfield.count }
  }

  async waitHave(digest: Digest, knownCount: number, signal: AbortSignal, ctx?: RequestContext): Promise<void> {
    while (!signal.aborted) {
      const now = this.have(digest, ctx)
      if (now === undefined || now.complete || now.bitfield.count !== knownCount) return
      const live = this.#i.live.get(digest)
      if (live !== undefined && this.#i.advertise === undefined) {
        await live.changed(signal)
        continue
      }
      // Narrowed per peer (super-seeding): the answer also changes when a chunk was served (readvertise), and as
      // chunks spread among agents, which no event marks: look again on either, or shortly.
      const readvertised = await this.#nextLook(digest, ctx?.peer.toString(), live, signal)
      // Complete here: the recheck ends the poll as before (the peer asks again); a wake-up looks at once.
      if (live === undefined && !readvertised) return
    }
  }

  /**
   * Resolves on the first of: a readvertise for `peer`, a change of the live blob, the recheck interval, an abort;
   * true for a readvertise. Plain listeners rather than AbortSignal.any or an AbortController for the live blob's
   * wait (whose abort() builds a DOMException at every finish): this runs once per chunk served.
   */
  #nextLook(
    digest: Digest,
    peer: string | undefined,
    live: LiveBlob | undefined,
    signal: AbortSignal,
  ): Promise<boolean> {
    return new Promise((resolve) => {
      let stopLive: (() => void) | undefined
      let waiters = this.#narrowed.get(digest)
      if (waiters === undefined) this.#narrowed.set(digest, (waiters = new Set()))
      let done = false
      const finish = (readvertised: boolean): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        waiters.delete(waiter)
        if (waiters.size === 0 && this.#narrowed.get(digest) === waiters) this.#narrowed.delete(digest)
        stopLive?.()
        resolve(readvertised)
      }
      const onAbort = (): void => finish(false)
      const waiter = { peer, wake: (): void => finish(true) }
      const timer = setTimeout(() => finish(false), ADVERTISE_RECHECK_MS)
      waiters.add(waiter)
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) finish(false)
      else stopLive = live?.onNextChange(() => finish(false))
    })
  }

  /**
   * What may be advertised of `digest` to `peer` (every peer when omitted) changed without a chunk arriving here:
   * a seeder served it one, so a super-seeding reservation is free again. Its long poll on a narrowed answer looks
   * again now rather than at its next recheck; without this a lone agent of a blob the seeder holds complete was
   * told of at most a quota of chunks per recheck interval (4 MiB per 200 ms).
   */
  readvertise(digest: Digest, peer?: string): void {
    const waiters = this.#narrowed.get(digest)
    if (waiters === undefined) return
    for (const w of [...waiters]) if (peer === undefined || w.peer === peer) w.wake()
  }

  async readChunk(
    digest: Digest,
    index: number,
    _ctx?: RequestContext,
    into?: Uint8Array,
  ): Promise<{ bytes: Uint8Array; attestation?: ChunkAttestation } | undefined> {
    const live = this.#i.live.get(digest)
    if (live !== undefined) {
      if (!live.verified.has(index)) return undefined
      const bytes = await live.partial.readChunk(index, into === undefined ? {} : { into })
      const attestation = live.attestations.get(index)
      return attestation === undefined ? { bytes } : { bytes, attestation }
    }
    const c = this.#complete.get(digest)
    if (c === undefined) return undefined
    const attestation = await this.#attestation(digest, index)
    const { start, end } = chunkRange(c, index)
    const bytes = await this.#i.store.readRange(digest, { start, end }, into)
    if (bytes === undefined) return undefined
    return attestation === undefined ? { bytes } : { bytes, attestation }
  }

  /**
   * Peers that began a cold blob verify chunks by the seeder's attestations; they keep coming with
   * the chunks after the blob completes here. Kept in memory for the last few blobs asked about.
   */
  async #attestation(digest: Digest, index: number): Promise<ChunkAttestation | undefined> {
    let byIndex = this.#attestations.get(digest)
    if (byIndex === undefined) {
      byIndex = new Map((await this.#i.maps.attestations(digest)).map((a) => [a.index, a]))
      this.#attestations.set(digest, byIndex)
      if (this.#attestations.size > ATTESTATION_CACHE_BLOBS)
        this.#attestations.delete(this.#attestations.keys().next().value!)
    }
    return byIndex.get(index)
  }
}
