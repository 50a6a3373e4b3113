import {
  DEFAULT_MANIFEST_ACCEPT,
  type Digest,
  digestOf,
  isDigest,
  isRepositoryName,
  isTag,
  MAX_MANIFEST_BYTES,
  manifestMediaType,
  parseDigest,
} from '../shared/oci/index.ts'
import { type OriginClient, readBounded, type Upstream } from '../shared/origin/index.ts'
import type { ManifestCache } from '../shared/store/index.ts'
import { InvalidPreheatRequestError, PreheatFailedError } from './errors.ts'
import type { PreheatCredentials } from './schemas.ts'

/** An image reference split into its parts; `registry` is undefined for the default origin. */
export interface ImageReference {
  readonly registry: string | undefined
  readonly name: string
  /** A tag or a digest. */
  readonly reference: string
}

export { InvalidPreheatRequestError, PreheatFailedError }

/**
 * Parses `registry/name:tag`, `registry/name@digest` or `name[:tag]`. Like docker, the first
 * component is a registry only when it holds a `.` or `:` or is `localhost`.
 */
export function parseImageReference(value: string): ImageReference {
  if (value.length === 0 || value.length > 512) throw new InvalidPreheatRequestError('image: bad length')
  let rest = value
  let reference: string
  const at = rest.indexOf('@')
  if (at >= 0) {
    reference = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!isDigest(reference)) throw new InvalidPreheatRequestError(`image: invalid digest ${JSON.stringify(reference)}`)
    // name:tag@digest pins by digest; the tag is only a label.
    const colon = rest.lastIndexOf(':')
    if (colon > rest.lastIndexOf('/')) rest = rest.slice(0, colon)
  } else {
    const colon = rest.lastIndexOf(':')
    if (colon > rest.lastIndexOf('/')) {
      reference = rest.slice(colon + 1)
      rest = rest.slice(0, colon)
    } else reference = 'latest'
    if (!isTag(reference)) throw new InvalidPreheatRequestError(`image: invalid tag ${JSON.stringify(reference)}`)
  }
  const slash = rest.indexOf('/')
  const first = slash < 0 ? '' : rest.slice(0, slash)
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')
  const registry = hasRegistry ? first.toLowerCase() : undefined
  const name = hasRegistry ? rest.slice(slash + 1) : rest
  if (!isRepositoryName(name)) throw new InvalidPreheatRequestError(`image: invalid repository name`)
  return { registry, name, reference }
}

/** Platforms as a job key compares them: lower case, each once, sorted (their shape is the request schema's). */
export function normalizePlatforms(platforms: readonly string[]): string[] {
  return [...new Set(platforms.map((p) => p.toLowerCase()))].sort()
}

/** `{ username, password }` or `{ token }` (checked by the request schema) → the Authorization header of one job. */
export function authorizationOf(c: PreheatCredentials): string {
  if ('token' in c) return `Bearer ${c.token}`
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`
}

export interface Descriptor {
  readonly digest: Digest
  readonly size: number
  readonly platform?: { os?: unknown; architecture?: unknown; variant?: unknown }
}

function descriptor(value: unknown): Descriptor {
  const d = value as { digest?: unknown; size?: unknown; platform?: unknown } | null
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || !isDigest(d.digest))
    throw new PreheatFailedError('manifest holds a descriptor without a valid digest')
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0)
    throw new PreheatFailedError('manifest holds a descriptor without a valid size')
  const platform = typeof d.platform === 'object' && d.platform !== null ? d.platform : undefined
  return { digest: d.digest, size: d.size, ...(platform === undefined ? {} : { platform }) }
}

function platformMatches(p: Descriptor['platform'], wanted: string): boolean {
  if (p === undefined) return false
  const [os, arch, variant] = wanted.split('/')
  return p.os === os && p.architecture === arch && (variant === undefined || p.variant === variant)
}

export interface ResolveOptions {
  readonly origin: OriginClient
  readonly upstream: Upstream
  readonly name: string
  readonly reference: string
  readonly platforms: readonly string[]
  /** The job's own Authorization (its credentials); the seeder's configured ones otherwise. */
  readonly authorization?: string | undefined
  readonly signal?: AbortSignal
  /**
   * Where each manifest the job resolves is kept once verified, so agents can fetch its body by digest from this
   * seeder (shared/swarm/manifests) instead of the origin.
   */
  readonly manifests?: Pick<ManifestCache, 'putManifest'>
}

async function fetchManifest(o: ResolveOptions, reference: string): Promise<{ mediaType: string; doc: unknown }> {
  const { name } = o
  const res = await o.origin.request(o.upstream, {
    method: 'GET',
    path: `${name}/manifests/${reference}`,
    headers: { accept: DEFAULT_MANIFEST_ACCEPT },
    scope: `repository:${name}:pull`,
    ...(o.authorization === undefined ? {} : { clientAuthorization: o.authorization }),
    ...(o.signal === undefined ? {} : { signal: o.signal }),
  })
  if (res.status !== 200) {
    res.body.destroy()
    throw new PreheatFailedError(`origin answered ${res.status} for ${name}:${reference}`, res.status)
  }
  const bytes = await readBounded(res.body, MAX_MANIFEST_BYTES)
  if (bytes === undefined) {
    throw new PreheatFailedError(`manifest ${name}:${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`)
  }
  const digest = digestOf(bytes)
  if (isDigest(reference) && digest !== reference)
    throw new PreheatFailedError(`manifest ${name}@${reference} does not match its digest`)
  const claimed = res.headers['docker-content-digest']
  if (typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest)
    throw new PreheatFailedError(`manifest ${name}:${reference} does not match the digest the origin gave`)
  const ct = res.headers['content-type']
  const mediaType = manifestMediaType(bytes, typeof ct === 'string' ? ct : undefined)
  // Named by the digest of its own bytes: only verified bytes are cached (putManifest checks them again).
  await o.manifests?.putManifest(digest, mediaType, bytes)
  try {
    return { mediaType, doc: JSON.parse(bytes.toString('utf8')) as unknown }
  } catch {
    throw new PreheatFailedError(`manifest ${name}:${reference} is not JSON`)
  }
}

/** Config and layer descriptors of the image (every chosen platform of an index), each digest once. */
export async function resolveImageBlobs(o: ResolveOptions): Promise<Descriptor[]> {
  const root = await fetchManifest(o, o.reference)
  const children: unknown[] = []
  const rootManifests = (root.doc as { manifests?: unknown }).manifests
  if (Array.isArray(rootManifests)) {
    const all = rootManifests.map(descriptor)
    for (const p of o.platforms)
      if (!all.some((d) => platformMatches(d.platform, p)))
        throw new PreheatFailedError(`the index has no manifest for ${p}`)
    const chosen =
      o.platforms.length === 0 ? all : all.filter((d) => o.platforms.some((p) => platformMatches(d.platform, p)))
    for (const d of chosen) children.push((await fetchManifest(o, d.digest)).doc)
  } else children.push(root.doc)
  const blobs = new Map<Digest, Descriptor>()
  for (const m of children) {
    const { config, layers } = m as { config?: unknown; layers?: unknown }
    if (config === undefined || !Array.isArray(layers)) throw new PreheatFailedError('not an image manifest')
    for (const d of [descriptor(config), ...layers.map(descriptor)]) blobs.set(parseDigest(d.digest), d)
  }
  return [...blobs.values()]
}

/** A HEAD of the blob with the job's credentials: a blob another job (or the swarm) pulled must be readable by this one. */
export async function checkBlobReadable(
  o: Omit<ResolveOptions, 'reference' | 'platforms'>,
  digest: Digest,
): Promise<void> {
  const res = await o.origin.request(o.upstream, {
    method: 'HEAD',
    path: `${o.name}/blobs/${digest}`,
    scope: `repository:${o.name}:pull`,
    ...(o.authorization === undefined ? {} : { clientAuthorization: o.authorization }),
    ...(o.signal === undefined ? {} : { signal: o.signal }),
  })
  res.body.destroy()
  if (res.status !== 200)
    throw new PreheatFailedError(
      `origin answered ${res.status} to the job's credentials for ${o.name}@${digest}`,
      res.status,
    )
}
