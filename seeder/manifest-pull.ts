import {
  DEFAULT_MANIFEST_ACCEPT,
  type Digest,
  digestAlgorithm,
  digestOf,
  MAX_MANIFEST_BYTES,
  manifestMediaType,
} from '../shared/oci/index.ts'
import { type OriginClient, readBounded, type Upstream } from '../shared/origin/index.ts'
import type { ManifestCache } from '../shared/store/index.ts'

/** A seeder's pull of one manifest for the swarm is given up after this long (the askers have gone to the origin). */
export const MANIFEST_PULL_TIMEOUT_MS = 10_000

export interface ManifestPullInit {
  readonly origin: Pick<OriginClient, 'request'>
  /** Which upstream a registry means (undefined: this seeder does not pull from it). */
  readonly upstreamFor: (registry: string) => Upstream | undefined
  readonly cache: Pick<ManifestCache, 'getManifest' | 'putManifest'>
}

/**
 * The seeder's side of manifest sharing in a cold rollout: an agent whose origin resolved a digest asks the seeder
 * for the body; a seeder that lacks it GETs it by digest from that registry once, with its own credentials (as it
 * pulls blobs), however many agents ask at once, and keeps it only if the bytes hash to the digest. The agents'
 * HEADs at the origin remain their authorization; the origin sends the body once per fleet.
 */
export function manifestPull(init: ManifestPullInit) {
  const inflight = new Map<Digest, Promise<void>>()
  const pull = async (digest: Digest, registry: string, name: string): Promise<void> => {
    if ((await init.cache.getManifest(digest)) !== undefined) return
    const upstream = init.upstreamFor(registry)
    if (upstream === undefined) throw new Error(`not pulling from registry ${registry}`)
    const res = await init.origin.request(upstream, {
      method: 'GET',
      path: `${name}/manifests/${digest}`,
      headers: { accept: DEFAULT_MANIFEST_ACCEPT },
      scope: `repository:${name}:pull`,
      signal: AbortSignal.timeout(MANIFEST_PULL_TIMEOUT_MS),
    })
    if (res.status !== 200) {
      res.body.destroy()
      throw new Error(`origin answered ${res.status} for a manifest by digest`)
    }
    const bytes = await readBounded(res.body, MAX_MANIFEST_BYTES)
    if (bytes === undefined) throw new Error(`manifest larger than ${MAX_MANIFEST_BYTES} bytes`)
    if (digestOf(bytes, digestAlgorithm(digest)) !== digest) throw new Error('manifest does not match its digest')
    const ct = res.headers['content-type']
    await init.cache.putManifest(digest, manifestMediaType(bytes, typeof ct === 'string' ? ct : undefined), bytes)
  }
  return (digest: Digest, registry: string, name: string): Promise<void> => {
    let p = inflight.get(digest)
    if (p === undefined) {
      p = pull(digest, registry, name).finally(() => inflight.delete(digest))
      inflight.set(digest, p)
    }
    return p
  }
}
