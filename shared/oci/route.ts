import { type Digest, isDigest } from './digest.ts'
import { RegistryError } from './errors.ts'
import { isRepositoryName, parseReference, type Reference } from './reference.ts'

/**
 * A `/v2/` request path parsed into a validated value before any handler logic runs. `registry` is set only
 * when the path named its upstream with a leading registry-host component (see `registryPrefix`).
 */
export type V2Route =
  | { readonly kind: 'base' }
  | { readonly kind: 'catalog' }
  | ({ readonly kind: 'tags'; readonly name: string } & RegistryPart)
  | ({ readonly kind: 'manifest'; readonly name: string; readonly reference: Reference } & RegistryPart)
  | ({ readonly kind: 'blob'; readonly name: string; readonly digest: Digest } & RegistryPart)
  | ({ readonly kind: 'upload'; readonly name: string; readonly rest: string } & RegistryPart)
  | ({ readonly kind: 'referrers'; readonly name: string; readonly digest: Digest } & RegistryPart)

interface RegistryPart {
  readonly registry?: string
}

export interface ParseV2Options {
  /**
   * Read a leading registry-host component of the repository path as the upstream
   * (`/v2/ghcr.io/org/app/...` → registry `ghcr.io`, name `org/app`). Clients other than containerd send
   * no `?ns=`, so a mirror location with a path prefix (`127.0.0.1:5000/ghcr.io`) is how they name the
   * registry. Off when the request carries `?ns=`: then the whole path is the name, as containerd meant it.
   */
  readonly registryPrefix?: boolean
}

const UPLOAD_ID_RE = /^[A-Za-z0-9_=-]{1,256}$/

/**
 * Parses the raw (still percent-encoded) path after `/v2`. Works on the raw form on purpose:
 * an encoded slash or dot never becomes a path separator or `..` because `%` is outside every grammar.
 */
export function parseV2Path(rawPath: string, options: ParseV2Options = {}): V2Route {
  if (rawPath === '/v2' || rawPath === '/v2/') return { kind: 'base' }
  if (!rawPath.startsWith('/v2/')) throw notFound(rawPath)
  const rest = rawPath.slice(4)
  if (rest === '_catalog') return { kind: 'catalog' }
  const parts = rest.split('/')
  // Scan from the right for the first keyword so names may contain `manifests`/`blobs` components.
  // Every route has at most two parts after its keyword, so only the last three positions can
  // hold one; the name is joined only on a match (a path of thousands of parts stays linear).
  for (let i = parts.length - 2; i >= Math.max(1, parts.length - 3); i--) {
    const keyword = parts[i]
    const name = () => splitName(parts.slice(0, i), options.registryPrefix === true)
    const tail = parts.slice(i + 1)
    if (keyword === 'manifests' && tail.length === 1) {
      return { kind: 'manifest', ...name(), reference: parseReference(tail[0]!) }
    }
    if (keyword === 'tags' && tail.length === 1 && tail[0] === 'list') return { kind: 'tags', ...name() }
    if (keyword === 'referrers' && tail.length === 1) {
      return { kind: 'referrers', ...name(), digest: checkDigest(tail[0]!) }
    }
    if (keyword === 'blobs' && tail.length === 1 && tail[0] !== 'uploads') {
      return { kind: 'blob', ...name(), digest: checkDigest(tail[0]!) }
    }
    if (keyword === 'blobs' && tail[0] === 'uploads' && tail.length <= 2) {
      const id = tail[1] ?? ''
      if (id !== '' && !UPLOAD_ID_RE.test(id)) throw new RegistryError('BLOB_UPLOAD_INVALID', 'invalid upload id')
      return { kind: 'upload', ...name(), rest: id }
    }
  }
  throw notFound(rawPath)
}

/**
 * The registry-host rule, the one Docker applies to the first component of an image reference: a leading
 * component is a registry host when it contains a `.` or a `:` or is `localhost`, and at least one
 * component follows it. An image reference cannot hold a `:` in its path, so a port is written `__`
 * (`127.0.0.1__5001` is `127.0.0.1:5001`; `__` cannot occur in a host name): the first `__` is read as
 * `:` before the rule applies. Ambiguity: a repository whose
 * own first component contains a dot (`my.team/app`) would be read as a registry, so this applies only
 * without `?ns=`, and mirror locations written by `shoal configure` always carry the prefix, after which
 * every further component belongs to the name.
 */
export function registryPrefix(component: string): string | undefined {
  const host = component.replace('__', ':')
  if (!(host.includes('.') || host.includes(':') || host === 'localhost')) return undefined
  return HOST_COMPONENT_RE.test(host) ? host : undefined
}

// A host name or IPv4 (lower case, as OCI names are), optional port; the upstream resolver validates it again.
const HOST_COMPONENT_RE = /^[a-z0-9](?:[a-z0-9.-]{0,252}[a-z0-9])?(?::[0-9]{1,5})?$/

function splitName(parts: readonly string[], prefix: boolean): { name: string; registry?: string } {
  if (prefix && parts.length >= 2) {
    const registry = registryPrefix(parts[0]!)
    if (registry !== undefined) return { registry, name: checkName(parts.slice(1).join('/')) }
  }
  return { name: checkName(parts.join('/')) }
}

function checkName(name: string): string {
  if (!isRepositoryName(name))
    throw new RegistryError('NAME_INVALID', 'invalid repository name', { detail: { name: name.slice(0, 300) } })
  return name
}

function checkDigest(value: string): Digest {
  if (!isDigest(value))
    throw new RegistryError('DIGEST_INVALID', 'invalid digest', { detail: { digest: value.slice(0, 200) } })
  return value
}

function notFound(path: string): RegistryError {
  return new RegistryError('NAME_UNKNOWN', 'unknown route', { status: 404, detail: { path: path.slice(0, 300) } })
}
