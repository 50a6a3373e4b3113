import type { Logger } from '../../shared/log/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import {
  accepts,
  DEFAULT_MANIFEST_ACCEPT,
  type Digest,
  Digester,
  DigestMismatchError,
  isDigest,
  MAX_MANIFEST_BYTES,
  manifestMediaType,
  type Reference,
  RegistryError,
} from '../../shared/oci/index.ts'
import type { Upstream } from '../../shared/origin/index.ts'
import type { ManifestCache } from '../../shared/store/index.ts'
import type { Authorizer } from '../authz.ts'
import { OriginStatusError, OriginUnavailableError } from '../errors.ts'
import { type OriginPort, originRequest, readBody, statusError } from '../origin-port.ts'

export interface ManifestRequest {
  readonly method: 'GET' | 'HEAD'
  readonly upstream: Upstream
  readonly name: string
  readonly reference: Reference
  readonly accept: string | undefined
  readonly authorization: string | undefined
  readonly signal: AbortSignal
}

export interface ManifestReply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body?: Buffer
}

export interface ManifestServiceDeps {
  readonly origin: OriginPort
  readonly cache: ManifestCache
  readonly authorizer: Authorizer
  readonly metrics: Metrics
  readonly log: Logger
  readonly tagTtlMs: number
  readonly now?: () => number
}

/**
 * Manifests come from the origin (tags stay fresh, the origin decides who reads what) and are
 * cached by digest after verification. A tag is re-resolved at the origin once its short TTL is
 * over; while the origin is unreachable a cached tag is served stale, with a Warning header.
 */
export class ManifestService {
  readonly #d: ManifestServiceDeps
  readonly #now: () => number

  constructor(deps: ManifestServiceDeps) {
    this.#d = deps
    this.#now = deps.now ?? Date.now
  }

  async serve(req: ManifestRequest): Promise<ManifestReply> {
    const { cache, authorizer, metrics } = this.#d
    if (req.reference.kind === 'digest') {
      const digest = req.reference.digest as Digest
      const hit = await cache.getManifest(digest)
      if (hit !== undefined) {
        metrics.cacheLookups.inc({ kind: 'manifest', result: 'hit' })
        await authorizer.authorize(req.upstream, req.name, 'manifests', digest, req.authorization, req.signal)
        return reply(req, digest, hit.mediaType, Buffer.from(hit.bytes))
      }
      metrics.cacheLookups.inc({ kind: 'manifest', result: 'miss' })
      return this.#fetch(req)
    }
    const key = tagKey(req.upstream, req.name, req.reference.tag)
    const tag = await cache.getTag(key)
    if (
      tag !== undefined &&
      this.#now() - tag.resolvedAt <= this.#d.tagTtlMs &&
      authorizer.hasFreshGrant(req.upstream, req.name, req.authorization)
    ) {
      const hit = await cache.getManifest(tag.digest)
      // A tag answers differently per Accept (index vs one platform): reuse only what this client takes.
      if (hit !== undefined && accepts(req.accept, hit.mediaType)) {
        metrics.cacheLookups.inc({ kind: 'tag', result: 'hit' })
        return reply(req, tag.digest, hit.mediaType, Buffer.from(hit.bytes))
      }
    }
    metrics.cacheLookups.inc({ kind: 'tag', result: 'miss' })
    try {
      return await this.#fetch(req)
    } catch (err) {
      // A rate-limited origin (429 past the waits the origin client allows) is as unavailable as a down one.
      const unavailable =
        err instanceof OriginUnavailableError || (err instanceof OriginStatusError && err.status === 429)
      if (!unavailable || tag === undefined) throw err
      const hit = await cache.getManifest(tag.digest)
      if (hit === undefined) throw err
      this.#d.log.warn(
        { name: req.name, tag: req.reference.tag, err: err.message },
        'origin unavailable, serving stale tag',
      )
      const r = reply(req, tag.digest, hit.mediaType, Buffer.from(hit.bytes))
      r.headers['warning'] = '110 shoal "Response is Stale"'
      return r
    }
  }

  async #fetch(req: ManifestRequest): Promise<ManifestReply> {
    const ref = req.reference.kind === 'digest' ? req.reference.digest : req.reference.tag
    this.#d.metrics.originFetches.inc({ kind: 'manifest' })
    const res = await originRequest(this.#d.origin, req.upstream, {
      method: 'GET',
      path: `${req.name}/manifests/${ref}`,
      headers: { accept: req.accept ?? DEFAULT_MANIFEST_ACCEPT },
      ...(req.authorization === undefined ? {} : { clientAuthorization: req.authorization }),
      scope: `repository:${req.name}:pull`,
      signal: req.signal,
    })
    if (res.status !== 200) throw await statusError(res)
    const { bytes, truncated } = await readBody(res.body, MAX_MANIFEST_BYTES)
    if (truncated) throw new RegistryError('MANIFEST_INVALID', `manifest larger than ${MAX_MANIFEST_BYTES} bytes`)
    const claimed = header(res.headers, 'docker-content-digest')
    const expected = req.reference.kind === 'digest' ? (req.reference.digest as Digest) : claimed
    const hasher = expected !== undefined && isDigest(expected) ? Digester.for(expected) : new Digester('sha256')
    hasher.update(bytes)
    const digest = hasher.digest()
    for (const want of [expected, claimed]) {
      if (want !== undefined && isDigest(want) && want.startsWith(`${hasher.algorithm}:`) && want !== digest) {
        this.#d.metrics.digestFailures.inc({ source: 'origin' })
        throw new RegistryError('MANIFEST_INVALID', 'manifest from the origin does not match its digest', {
          status: 502,
          cause: new DigestMismatchError(want, digest),
        })
      }
    }
    const mediaType = manifestMediaType(bytes, header(res.headers, 'content-type'))
    await this.#d.cache.putManifest(digest, mediaType, bytes)
    if (req.reference.kind === 'tag') {
      await this.#d.cache.putTag(tagKey(req.upstream, req.name, req.reference.tag), {
        digest,
        mediaType,
        resolvedAt: this.#now(),
      })
    }
    this.#d.authorizer.granted(req.upstream, req.name, digest, req.authorization)
    return reply(req, digest, mediaType, bytes)
  }
}

function reply(req: ManifestRequest, digest: Digest, mediaType: string, bytes: Buffer): ManifestReply {
  const headers: Record<string, string> = {
    'content-type': mediaType,
    'content-length': String(bytes.byteLength),
    'docker-content-digest': digest,
    etag: `"${digest}"`,
  }
  return req.method === 'HEAD' ? { status: 200, headers } : { status: 200, headers, body: bytes }
}

function tagKey(upstream: Upstream, name: string, tag: string): string {
  return `${upstream.registry}/${name}:${tag}`
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v[0] : v
}
