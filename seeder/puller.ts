import type { PrivateKey } from '@libp2p/interface'
import { ChunkMapBuilder, type CompletedChunk, signChunkAttestation, signChunkMap } from '../shared/chunks/index.ts'
import type { Logger } from '../shared/log/index.ts'
import type { Metrics } from '../shared/metrics/index.ts'
import type { Digest } from '../shared/oci/index.ts'
import type { OriginClient, Upstream } from '../shared/origin/index.ts'
import { throttled, type TokenBucket } from '../shared/rate/index.ts'
import type { ContentStore } from '../shared/store/index.ts'
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
    metrics.originFetches.inc({ kind: 'blob' })
    const res = await this.#i.origin.request(upstream, {
      method: 'GET',
      path: `${name}/blobs/${digest}`,
      scope: `repository:${name}:pull`,
      ...(authorization === undefined ? {} : { clientAuthorization: authorization }),
    })
    if (res.status !== 200) {
      res.body.destroy()
      throw new OriginFetchError(res.status, `origin answered ${res.status} for ${name}@${digest}`)
    }
    const size = Number(res.headers['content-length'])
    if (!Number.isSafeInteger(size) || size < 0) {
      res.body.destroy()
      throw new OriginFetchError(502, 'origin sent a blob without a valid Content-Length')
    }
    // A partial left by a crash is not trusted here: nothing on it was attested, so start clean.
    const stale = store.getPartial(digest) ?? (await store.openPartial(digest, { size, chunkSize }))
    if (stale.prefixBytes > 0 || stale.written.count > 0) await stale.discard()
    const partial = stale.state === 'open' ? stale : await store.openPartial(digest, { size, chunkSize })
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
      const body = this.#i.originBucket === undefined ? res.body : throttled(res.body, this.#i.originBucket)
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
}
