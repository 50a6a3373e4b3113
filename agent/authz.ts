import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { DEFAULT_MANIFEST_ACCEPT } from '../shared/oci/index.ts'
import type { Upstream } from '../shared/origin/index.ts'
import { OriginStatusError, OriginUnavailableError } from './errors.ts'
import { type OriginPort, originRequest, statusError } from './origin-port.ts'

export interface AuthorizerOptions {
  readonly origin: OriginPort
  readonly ttlMs: number
  /** While the origin is down, a grant this old still counts. */
  readonly staleTtlMs: number
  /** Registries whose content anyone may read: no check. */
  readonly isPublic: (registry: string) => boolean
  readonly now?: () => number
  /** Cap on cached (registry, repository, credential) grants; default MAX_AUTH_GRANTS. */
  readonly maxGrants?: number
  /** Cap on cached (registry, repository, digest) memberships; default MAX_AUTH_MEMBERS. */
  readonly maxMembers?: number
}

/**
 * Clients rotate their tokens (every pull, every hour), and each new token is a new grant key: without a
 * cap the cache grows with traffic. An entry lives as long as `--stale-auth-ttl` (or `--auth-ttl`, if
 * longer) may still need it, so no grant is dropped for age while the origin is down; the cap only bites
 * when more distinct credentials were granted within that window than it holds. Past the cap the least
 * recently used grant goes first: its client is asked again at the origin (one HEAD), or refused while
 * the origin is down. 16,384 grants and 65,536 digests are a few MiB of keys at most.
 */
export const MAX_AUTH_GRANTS = 16_384
export const MAX_AUTH_MEMBERS = 65_536

export type ContentKind = 'blobs' | 'manifests'

/**
 * Decides whether a client may read cached content, by asking the origin (a HEAD with the
 * client's own credentials). Two facts are cached separately: "this credential may read this
 * repository" and "this digest belongs to this repository", so a client that can read repo A
 * never gets repo B's layer by asking for it under A's name.
 */
export class Authorizer {
  readonly #o: AuthorizerOptions
  /** When each credential was last granted each repository, by the origin. */
  readonly #grants: LRUCache<string, number>
  /** When the origin last confirmed each digest in each repository. */
  readonly #members: LRUCache<string, number>
  readonly #now: () => number

  constructor(opts: AuthorizerOptions) {
    this.#o = opts
    this.#now = opts.now ?? Date.now
    // Freshness is judged by the stored time; the cache's own TTL only drops what no rule can use any more.
    const lifeMs = Math.max(opts.ttlMs, opts.staleTtlMs)
    const cache = (max: number) =>
      new LRUCache<string, number>({
        max,
        ...(lifeMs > 0 ? { ttl: lifeMs } : {}),
        ttlResolution: 0,
        perf: { now: this.#now },
      })
    this.#grants = cache(opts.maxGrants ?? MAX_AUTH_GRANTS)
    this.#members = cache(opts.maxMembers ?? MAX_AUTH_MEMBERS)
  }

  /** Cached grants and memberships (each at most its cap). */
  get size(): { readonly grants: number; readonly members: number } {
    return { grants: this.#grants.size, members: this.#members.size }
  }

  /** Records a successful origin read made with this credential (e.g. the GET that started a download). */
  granted(upstream: Upstream, name: string, digest: string, authorization: string | undefined): void {
    const now = this.#now()
    this.#grants.set(grantKey(upstream, name, authorization), now)
    this.#members.set(memberKey(upstream, name, digest), now)
  }

  /** True when a fresh grant for this credential and repository is cached (no network). */
  hasFreshGrant(upstream: Upstream, name: string, authorization: string | undefined): boolean {
    if (this.#o.isPublic(upstream.registry)) return true
    return this.#fresh(this.#grants, grantKey(upstream, name, authorization), this.#o.ttlMs)
  }

  /** Throws OriginStatusError (401/403/404 from the origin) or OriginUnavailableError. */
  async authorize(
    upstream: Upstream,
    name: string,
    kind: ContentKind,
    digest: string,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.#o.isPublic(upstream.registry)) return
    const gk = grantKey(upstream, name, authorization)
    const mk = memberKey(upstream, name, digest)
    if (this.#fresh(this.#grants, gk, this.#o.ttlMs) && this.#fresh(this.#members, mk, this.#o.ttlMs)) return
    let res: Awaited<ReturnType<typeof originRequest>>
    try {
      res = await originRequest(this.#o.origin, upstream, {
        method: 'HEAD',
        path: `${name}/${kind}/${digest}`,
        // distribution answers 404 to a manifest HEAD whose Accept leaves out its media type.
        headers: kind === 'manifests' ? { accept: DEFAULT_MANIFEST_ACCEPT } : {},
        ...(authorization === undefined ? {} : { clientAuthorization: authorization }),
        scope: `repository:${name}:pull`,
        ...(signal === undefined ? {} : { signal }),
      })
    } catch (err) {
      if (err instanceof OriginUnavailableError && this.#fresh(this.#grants, gk, this.#o.staleTtlMs)) {
        if (this.#fresh(this.#members, mk, this.#o.staleTtlMs)) return
      }
      throw err
    }
    if (res.status >= 200 && res.status < 300) {
      res.body.destroy()
      this.granted(upstream, name, digest, authorization)
      return
    }
    throw await statusError(res)
  }

  #fresh(cache: LRUCache<string, number>, key: string, ttl: number): boolean {
    const at = cache.get(key)
    return at !== undefined && this.#now() - at <= ttl
  }
}

function credentialId(authorization: string | undefined): string {
  // Keyed by a hash: the cache never holds a client's secret in plain form.
  return authorization === undefined ? 'anonymous' : createHash('sha256').update(authorization).digest('base64url')
}

const grantKey = (u: Upstream, name: string, auth: string | undefined) =>
  `${u.registry}\n${name}\n${credentialId(auth)}`
const memberKey = (u: Upstream, name: string, digest: string) => `${u.registry}\n${name}\n${digest}`

export { OriginStatusError }
