import type { Readable } from 'node:stream'
import type { PrivateKey } from '@libp2p/interface'
import { ChunkMapBuilder, type CompletedChunk, signChunkAttestation, signChunkMap } from '../shared/chunks/index.ts'
import type { Logger } from '../shared/log/index.ts'
import type { Metrics } from '../shared/metrics/index.ts'
import type { Digest } from '../shared/oci/index.ts'
import { type OriginClient, pullBlob, type RetryPolicy, type Upstream } from '../shared/origin/index.ts'
import { throttled, type TokenBucket } from '../shared/rate/index.ts'
import type { ContentStore, PartialBlob } from '../shared/store/index.ts'
import { LiveBlob, type LiveBlobs } from '../shared/swarm/live.ts'
import type { MapStore } from '../shared/swarm/maps/index.ts'
import type { StoreChunkSource } from '../shared/swarm/source.ts'
import { PullerStoppedError, RegistryNotAllowedError } from './errors.ts'

export { RegistryNotAllowedError }

export interface PullerInit {
  readonly origin: OriginClient
  readonly store: ContentStore
  readonly maps: MapStore
  readonly live: LiveBlobs
  readonly source: StoreChunkSource
  readonly key: PrivateKey
  readonly chunkSize: number
  readonly metrics: Metrics
  readonly log: Logger
  /** Which upstream a registry name means; undefined when this seeder does not pull from it. */
  readonly upstreamFor: (registry: string) => Upstream | undefined
  readonly originBucket?: TokenBucket
  readonly onProgress?: (digest: Digest, bytes: number, size: number) => void
  /** Resumes of a body that broke off, and the pause before each (default: the origin pull's). */
  readonly retry?: Partial<RetryPolicy>
}

interface Pull {
  readonly geometry: Promise<{ size: number; chunkSize: number }>
  readonly done: Promise<void>
}

/**
 * Pulls each blob from the origin once for the whole swarm. Bytes are streamed into the store;
 * as each chunk completes its hash is signed (an attestation) and the chunk becomes servable at
 * once, so a cold blob flows origin → seeder → agents chunk by chunk instead of twice in whole.
 * The whole-blob digest closes it, and only then is the full map signed.
 */
export class Puller {
  readonly #i: PullerInit
  readonly #pulls = new Map<Digest, Pull>()
  /** Aborted by stop(): every pull under way is cut, and none starts after. */
  readonly #stopping = new AbortController()

  constructor(init: PullerInit) {
    this.#i = init
  }

  /** Starts (or joins) the pull; resolves with the geometry once the origin answered. */
  fetch(digest: Digest, registry: string, name: string): Promise<{ size: number; chunkSize: number }> {
    return this.start(digest, registry, name).geometry
  }

  /**
   * `authorization`: a preheat job's own credentials, sent instead of the configured ones (never stored or
   * logged). A pull already under way for the digest is joined whatever credentials it was started with.
   */
  start(digest: Digest, registry: string, name: string, opts: { authorization?: string } = {}): Pull {
    const running = this.#pulls.get(digest)
    if (running !== undefined) return running
    if (this.#stopping.signal.aborted) {
      const stopped = Promise.reject(new PullerStoppedError('the seeder is stopping'))
      const pull: Pull = { geometry: stopped, done: stopped }
      stopped.catch(() => {})
      return pull
    }
    const geometry = Promise.withResolvers<{ size: number; chunkSize: number }>()
    const done = this.#pull(digest, registry, name, geometry.resolve, opts.authorization)
    done.then(
      () => this.#pulls.delete(digest),
      (err: unknown) => {
        geometry.reject(err)
        this.#pulls.delete(digest)
      },
    )
    const pull: Pull = { geometry: geometry.promise, done }
    pull.geometry.catch(() => {})
    pull.done.catch(() => {})
    this.#pulls.set(digest, pull)
    return pull
  }

  get inflight(): readonly Digest[] {
    return [...this.#pulls.keys()]
  }

  /**
   * Aborts every pull under way and waits until they have let go of the store: their partials stay on disk, and
   * the next start resumes them as after a crash. Pulls asked for afterwards fail with PullerStoppedError.
   */
  async stop(): Promise<void> {
    this.#stopping.abort(new PullerStoppedError('the seeder is stopping'))
    await Promise.allSettled([...this.#pulls.values()].map((p) => p.done))
  }

  async #pull(
    digest: Digest,
    registry: string,
    name: string,
    onGeometry: (g: { size: number; chunkSize: number }) => void,
    authorization: string | undefined,
  ): Promise<void> {
    const { store, maps, live, source, key, chunkSize, metrics, log } = this.#i
    const signal = this.#stopping.signal
    const info = await store.stat(digest)
    if (info !== undefined) {
      const map = await maps.get(digest)
      onGeometry({ size: info.size, chunkSize: map?.map.chunkSize ?? chunkSize })
      return
    }
    const upstream = this.#i.upstreamFor(registry)
    if (upstream === undefined) throw new RegistryNotAllowedError(`this seeder does not pull from ${registry}`)
    // A partial a crash left behind keeps its prefix (the store trusts it as it does for agents, and the
    // whole-blob digest still decides at commit): only the rest is asked of the origin.
    const resumed = await this.#stalePartial(digest)
    // The blob as the swarm sees it while it arrives; replaced when the pull has to start over.
    let blob: LiveBlob | undefined
    // Chunk hashes only: the blob's digest is checked by the partial's commit, before the map is signed.
    const chunkHasher = () => new ChunkMapBuilder(digest, chunkSize, { checkDigest: false })
    let builder = chunkHasher()
    const attest = async (c: CompletedChunk) => {
      const b = blob!
      const a = await signChunkAttestation({ digest, size: b.size, chunkSize, index: c.index, chunk: c.chunk }, key)
      await maps.putAttestation(a)
      b.markVerified(c.index, a)
    }
    let partial: PartialBlob | undefined = resumed
    try {
      partial = await pullBlob({
        origin: {
          request: (u, req) => {
            metrics.originFetches.inc({ kind: 'blob' })
            return this.#i.origin.request(u, req)
          },
        },
        upstream,
        name,
        digest,
        ...(authorization === undefined ? {} : { authorization }),
        store,
        chunkSize,
        ...(resumed === undefined ? {} : { partial: resumed }),
        signal,
        // Each chunk is attested as soon as its last byte is on disk: agents fetch it from here at once.
        flushAtChunkEnds: true,
        // onProgress hashes the pieces and keeps none: their memory is given back at once.
        freeBytes: true,
        ...(this.#i.originBucket === undefined
          ? {}
          : { throttle: (body: Readable) => throttled(body, this.#i.originBucket!) }),
        ...(this.#i.retry === undefined ? {} : { retry: this.#i.retry }),
        onPartial: async (p, from) => {
          partial = p
          if (blob !== undefined) live.remove(digest)
          blob = new LiveBlob(p)
          live.add(blob)
          builder = chunkHasher()
          onGeometry({ size: p.size, chunkSize })
          if (from === 0) return
          // The prefix's chunks are hashed again from disk and attested as if they had just arrived.
          for await (const data of p.read({ start: 0, end: from })) {
            for (const c of builder.update(data as Uint8Array)) await attest(c)
          }
          this.#i.onProgress?.(digest, builder.bytes, p.size)
          log.info({ digest, from, size: p.size }, 'resuming seeder pull')
        },
        onProgress: async ({ pieces, length }) => {
          metrics.bytesReceived.inc({ source: 'origin' }, length)
          // Piece by piece: joining them into one buffer first would copy every byte once more.
          for (const piece of pieces) for (const c of builder.update(piece)) await attest(c)
          this.#i.onProgress?.(digest, builder.bytes, blob!.size)
        },
      })
      const size = partial.size
      const { last, map } = builder.finish(size)
      if (last !== undefined) await attest(last)
      await partial.commit()
      // The partial file is gone now: serve from the store before anything slower happens.
      source.noteComplete(digest, size, chunkSize)
      live.remove(digest)
      await maps.put(await signChunkMap(map, key))
      log.info({ digest, size }, 'seeded blob from origin')
    } catch (err) {
      if ((err as { code?: string }).code === 'DIGEST_MISMATCH') metrics.digestFailures.inc({ source: 'origin' })
      // Stopped: what is on disk stays for the next start to resume, as after a crash.
      if (!signal.aborted) {
        await partial?.discard().catch(() => {})
        await maps.delete(digest).catch(() => {})
      }
      throw err
    } finally {
      live.remove(digest)
    }
  }

  /** A partial of `digest` on disk from an earlier run, reopened, when it has a prefix worth keeping. */
  async #stalePartial(digest: Digest): Promise<PartialBlob | undefined> {
    const { store, chunkSize } = this.#i
    // Pulls are single-flight per digest, so a partial open in this process is one an earlier attempt left.
    let partial = store.getPartial(digest)
    if (partial === undefined) {
      const found = (await store.listPartials()).find((p) => p.digest === digest)
      if (found === undefined) return undefined
      partial = await store.openPartial(digest, { size: found.size, chunkSize })
    }
    if (partial.appendOffset > 0) return partial
    await partial.discard()
    return undefined
  }
}
