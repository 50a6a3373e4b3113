import type { Logger } from '../../shared/log/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import {
  accepts,
  DEFAULT_MANIFEST_ACCEPT,
  type Digest,
  digestAlgorithm,
  Digester,
  digestOf,
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
import type { OriginResponse } from '../../shared/origin/index.ts'

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
  /**
   * Manifest bodies by digest from peers (shared/swarm/manifests), verified against the digest before they are
   * returned. With it, a manifest the cache lacks is resolved at the origin with a HEAD (tag freshness and the
   * authorization check stay with the origin) and its body asked of peers; absent: every miss is an origin GET.
   */
  readonly peers?: {
    get(
      digest: Digest,
      opts: { signal?: AbortSignal; where?: { registry: string; name: string } },
    ): Promise<{ mediaType: string; bytes: Uint8Array } | undefined>
  }
}

/** What a HEAD at the origin said about a manifest reference, when it said enough to fetch the body by digest. */
interface Resolved {
  readonly digest: Digest
  readonly contentType: string
}

/**
 * Manifests come from the origin (tags stay fresh, the origin decides who reads what) and are
 * cached by digest after verification. A tag is re-resolved at the origin once its short TTL is
 * over; while the origin is unreachable a cached tag is served stale, with a Warning header.
 * With `peers`, the origin answers a HEAD (digest, media type, authorization) and the body comes
 * from the cache or a peer, verified against that digest; any failure there is the origin GET by digest.
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
      return this.#fromOrigin(req)
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
      return await this.#fromOrigin(req)
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

  /** The body from the origin, or with `peers` a HEAD at the origin and the body from the cache or a peer. */
  async #fromOrigin(req: ManifestRequest): Promise<ManifestReply> {
    if (this.#d.peers === undefined) return this.#fetch(req)
    const resolved = await this.#resolve(req)
    // The HEAD did not name a digest and a media type this client takes: as before, a GET of what it asked for.
    if (resolved === undefined) return this.#fetch(req)
    const reply = await this.#byDigest(req, resolved)
    return reply ?? this.#fetch(req, resolved.digest)
  }

  /**
   * A HEAD of the client's reference with its Accept and credentials: the tag resolution and the authorization
   * check in one. A refusal or an answer without a digest is undefined (the GET then gets the origin's own error).
   */
  async #resolve(req: ManifestRequest): Promise<Resolved | undefined> {
    this.#d.metrics.originFetches.inc({ kind: 'manifest-head' })
    const res = await this.#originManifest(req, 'HEAD')
    res.body.destroy()
    if (res.status !== 200) return undefined
    const digest = header(res.headers, 'docker-content-digest')
    const contentType = header(res.headers, 'content-type')?.split(';')[0]?.trim()
    if (digest === undefined || !isDigest(digest) || contentType === undefined || contentType === '') return undefined
    if (req.reference.kind === 'digest' && digest !== req.reference.digest) return undefined
    if (!accepts(req.accept, contentType)) return undefined
    // The origin let this credential read this digest in this repository.
    this.#d.authorizer.granted(req.upstream, req.name, digest, req.authorization)
    return { digest, contentType }
  }

  /** The body of a resolved digest from the cache, else from a peer (verified), else undefined. */
  async #byDigest(req: ManifestRequest, r: Resolved): Promise<ManifestReply | undefined> {
    let found = await this.#d.cache.getManifest(r.digest)
    if (found === undefined) {
      try {
        found = await this.#d.peers!.get(r.digest, {
          signal: req.signal,
          where: { registry: req.upstream.registry, name: req.name },
        })
      } catch (err) {
        req.signal.throwIfAborted()
        this.#d.log.debug({ digest: r.digest, err }, 'manifest from peers failed')
        found = undefined
      }
      if (found === undefined) return undefined
      // The client verified it; the digest is the one the origin gave for this reference.
      if (digestOf(found.bytes, digestAlgorithm(r.digest)) !== r.digest) return undefined
      const mediaType = manifestMediaType(found.bytes, r.contentType)
      await this.#d.cache.putManifest(r.digest, mediaType, found.bytes)
      this.#d.metrics.cacheLookups.inc({ kind: 'manifest-peer', result: 'hit' })
      found = { mediaType, bytes: found.bytes }
    }
    if (!accepts(req.accept, found.mediaType)) return undefined
    if (req.reference.kind === 'tag') {
      await this.#d.cache.putTag(tagKey(req.upstream, req.name, req.reference.tag), {
        digest: r.digest,
        mediaType: found.mediaType,
        resolvedAt: this.#now(),
      })
    }
    return reply(req, r.digest, found.mediaType, Buffer.from(found.bytes))
  }

  /** The client's manifest request at the origin (or of `byDigest`), with its Accept and credentials. */
  async #originManifest(req: ManifestRequest, method: 'GET' | 'HEAD', byDigest?: Digest): Promise<OriginResponse> {
    const ref = byDigest ?? (req.reference.kind === 'digest' ? req.reference.digest : req.reference.tag)
    return await originRequest(this.#d.origin, req.upstream, {
      method,
      path: `${req.name}/manifests/${ref}`,
      headers: { accept: req.accept ?? DEFAULT_MANIFEST_ACCEPT },
      ...(req.authorization === undefined ? {} : { clientAuthorization: req.authorization }),
      scope: `repository:${req.name}:pull`,
      signal: req.signal,
    })
  }

  /** A GET at the origin of the client's reference, or of `byDigest` (the digest a HEAD resolved it to). */
  async #fetch(req: ManifestRequest, byDigest?: Digest): Promise<ManifestReply> {
    this.#d.metrics.originFetches.inc({ kind: 'manifest' })
    const res = await this.#originManifest(req, 'GET', byDigest)
    if (res.status !== 200) throw await statusError(res)
    const { bytes, truncated } = await readBody(res.body, MAX_MANIFEST_BYTES)
    if (truncated) throw new RegistryError('MANIFEST_INVALID', `manifest larger than ${MAX_MANIFEST_BYTES} bytes`)
    const claimed = header(res.headers, 'docker-content-digest')
    const expected = byDigest ?? (req.reference.kind === 'digest' ? (req.reference.digest as Digest) : claimed)
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
