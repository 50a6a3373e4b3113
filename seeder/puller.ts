import type { PrivateKey } from '@libp2p/interface'
import { ChunkMapBuilder, type CompletedChunk, signChunkAttestation, signChunkMap } from '../shared/chunks/index.ts'
import type { Logger } from '../shared/log/index.ts'
import type { Metrics } from '../shared/metrics/index.ts'
import type { Digest } from '../shared/oci/index.ts'
import type { OriginClient, Upstream } from '../shared/origin/index.ts'
import { throttled, type TokenBucket } from '../shared/rate/index.ts'
import type { ContentStore, PartialBlob } from '../shared/store/index.ts'
import { LiveBlob, type LiveBlobs } from '../shared/swarm/live.ts'
import type { MapStore } from '../shared/swarm/maps/index.ts'
import type { StoreChunkSource } from '../shared/swarm/source.ts'

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
}

export class RegistryNotAllowedError extends Error {
  override name = 'RegistryNotAllowedError'
  readonly code = 'REGISTRY_NOT_ALLOWED'
}

export class OriginFetchError extends Error {
  override name = 'OriginFetchError'
  readonly code = 'ORIGIN_FETCH'
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
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

  async #pull(
    digest: Digest,
    registry: string,
    name: string,
    onGeometry: (g: { size: number; chunkSize: number }) => void,
    authorization: string | undefined,
  ): Promise<void> {
    const { store, maps, live, source, key, chunkSize, metrics, log } = this.#i
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
    let resumed = await this.#stalePartial(digest)
    const from = resumed?.appendOffset ?? 0
    let partial: PartialBlob
    let size: number
    // Nothing is left to fetch when a crash came between the last byte and the commit.
    let body: AsyncIterable<unknown> | Iterable<unknown> = []
    if (resumed !== undefined && from === resumed.size) {
      partial = resumed
      size = resumed.size
    } else {
      metrics.originFetches.inc({ kind: 'blob' })
      const res = await this.#i.origin.request(upstream, {
        method: 'GET',
        path: `${name}/blobs/${digest}`,
        scope: `repository:${name}:pull`,
        headers: from > 0 ? { range: `bytes=${from}-` } : {},
        ...(authorization === undefined ? {} : { clientAuthorization: authorization }),
      })
      if (res.status === 206 && resumed !== undefined && !rangeStartsAt(res.headers['content-range'], from)) {
        res.body.destroy()
        throw new OriginFetchError(502, `origin answered a Range from ${from} with another range`)
      }
      if (res.status === 200 && resumed !== undefined) {
        // The origin ignored the Range: start over rather than trust an offset.
        await resumed.discard()
        resumed = undefined
      }
      if (res.status !== 200 && !(res.status === 206 && resumed !== undefined)) {
        res.body.destroy()
        throw new OriginFetchError(res.status, `origin answered ${res.status} for ${name}@${digest}`)
      }
      if (resumed !== undefined) {
        partial = resumed
        size = resumed.size
      } else {
        size = Number(res.headers['content-length'])
        if (!Number.isSafeInteger(size) || size < 0) {
          res.body.destroy()
          throw new OriginFetchError(502, 'origin sent a blob without a valid Content-Length')
        }
        partial = await store.openPartial(digest, { size, chunkSize })
      }
      body = this.#i.originBucket === undefined ? res.body : throttled(res.body, this.#i.originBucket)
    }
    const blob = new LiveBlob(partial)
    live.add(blob)
    onGeometry({ size, chunkSize })
    const builder = new ChunkMapBuilder(digest, chunkSize)
    const attest = async (c: CompletedChunk) => {
      const a = await signChunkAttestation({ digest, size, chunkSize, index: c.index, chunk: c.chunk }, key)
      await maps.putAttestation(a)
      blob.markVerified(c.index, a)
    }
    try {
      if (from > 0 && resumed !== undefined) {
        // The prefix's chunks are hashed again from disk and attested as if they had just arrived.
        for await (const data of partial.read({ start: 0, end: from })) {
          for (const c of builder.update(data as Uint8Array)) await attest(c)
        }
        this.#i.onProgress?.(digest, builder.bytes, size)
        log.info({ digest, from, size }, 'resuming seeder pull')
      }
      for await (const data of body) {
        const bytes = data as Uint8Array
        if (builder.bytes + bytes.byteLength > size)
          throw new OriginFetchError(502, 'origin sent more bytes than announced')
        await partial.append(bytes)
        metrics.bytesReceived.inc({ source: 'origin' }, bytes.byteLength)
        for (const c of builder.update(bytes)) await attest(c)
        this.#i.onProgress?.(digest, builder.bytes, size)
      }
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
      await partial.discard().catch(() => {})
      await maps.delete(digest).catch(() => {})
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

/** Whether a Content-Range header (`bytes START-END/SIZE`) starts at `from`. */
function rangeStartsAt(header: string | string[] | undefined, from: number): boolean {
  const m = typeof header === 'string' ? /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(header.trim()) : null
  return m !== null && Number(m[1]) === from
}
