import { type Digest, isDigest } from './digest.ts'
import { RegistryError } from './errors.ts'
import { isRepositoryName, parseReference, type Reference } from './reference.ts'

/** A `/v2/` request path parsed into a validated value before any handler logic runs. */
export type V2Route =
  | { readonly kind: 'base' }
  | { readonly kind: 'catalog' }
  | { readonly kind: 'tags'; readonly name: string }
  | { readonly kind: 'manifest'; readonly name: string; readonly reference: Reference }
  | { readonly kind: 'blob'; readonly name: string; readonly digest: Digest }
  | { readonly kind: 'upload'; readonly name: string; readonly rest: string }
  | { readonly kind: 'referrers'; readonly name: string; readonly digest: Digest }

const UPLOAD_ID_RE = /^[A-Za-z0-9_=-]{1,256}$/

/**
 * Parses the raw (still percent-encoded) path after `/v2`. Works on the raw form on purpose:
 * an encoded slash or dot never becomes a path separator or `..` because `%` is outside every grammar.
 */
export function parseV2Path(rawPath: string): V2Route {
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
    const name = () => checkName(parts.slice(0, i).join('/'))
    const tail = parts.slice(i + 1)
    if (keyword === 'manifests' && tail.length === 1) {
      return { kind: 'manifest', name: name(), reference: parseReference(tail[0]!) }
    }
    if (keyword === 'tags' && tail.length === 1 && tail[0] === 'list') return { kind: 'tags', name: name() }
    if (keyword === 'referrers' && tail.length === 1) {
      return { kind: 'referrers', name: name(), digest: checkDigest(tail[0]!) }
    }
    if (keyword === 'blobs' && tail.length === 1 && tail[0] !== 'uploads') {
      return { kind: 'blob', name: name(), digest: checkDigest(tail[0]!) }
    }
    if (keyword === 'blobs' && tail[0] === 'uploads' && tail.length <= 2) {
      const id = tail[1] ?? ''
      if (id !== '' && !UPLOAD_ID_RE.test(id)) throw new RegistryError('BLOB_UPLOAD_INVALID', 'invalid upload id')
      return { kind: 'upload', name: name(), rest: id }
    }
  }
  throw notFound(rawPath)
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
