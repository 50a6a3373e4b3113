import { isRepositoryName } from '../oci/reference.ts'
import type { Method } from './http.ts'

// Greedy: the name is everything before the last route keyword, so names may contain `blobs`.
const REPO_PATH_RE = /^(.+)\/(?:manifests\/[^/]+|blobs\/uploads\/?[^/]*|blobs\/[^/]+|tags\/list|referrers\/[^/]+)$/

/**
 * The token scope a request needs, from its path (Docker token spec: `repository:<name>:<actions>`).
 * Empty for the base endpoint. A cross-repository mount also needs pull on the source repository.
 */
export function defaultScope(method: Method, path: string, query?: URLSearchParams): string {
  if (path === '_catalog') return 'registry:catalog:*'
  const name = REPO_PATH_RE.exec(path)?.[1]
  if (name === undefined) return ''
  const actions = method === 'GET' || method === 'HEAD' ? 'pull' : method === 'DELETE' ? 'delete' : 'pull,push'
  const scopes = [`repository:${name}:${actions}`]
  const from = query?.get('from')
  if (method === 'POST' && from != null && isRepositoryName(from)) scopes.push(`repository:${from}:pull`)
  return scopes.join(' ')
}

/** Space-separated scopes as a sorted, duplicate-free list (a stable cache key). */
export function splitScopes(...scopes: (string | undefined)[]): string[] {
  const all = new Set<string>()
  for (const s of scopes) for (const one of (s ?? '').split(/\s+/)) if (one !== '') all.add(one)
  return [...all].sort()
}
