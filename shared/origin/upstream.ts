import { InvalidOriginPathError, InvalidUpstreamError } from './errors.ts'

/** The registry a request goes to. */
export interface Upstream {
  /** Canonical `host[:port]`: the key for caches and credentials (`docker.io` for Docker Hub). */
  readonly registry: string
  /** `scheme://host[:port][/prefix]` below which `/v2/` lives; never carries credentials, query or fragment. */
  readonly baseUrl: URL
}

export interface UpstreamResolverOptions {
  /** Where requests without `ns` go. */
  readonly defaultOrigin: URL
  /** `host[:port]` entries reached over plain http. */
  readonly insecureRegistries: readonly string[]
}

export const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])
const DOCKER_HUB_URL = 'https://registry-1.docker.io'

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
// DNS name or IPv4, or a bracketed IPv6 literal; optional port. Nothing else may reach a URL.
const HOST_PORT_RE = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9a-f:.]+\\])(?::([0-9]{1,5}))?$`)
const MAX_HOST_PORT_LENGTH = 261

/**
 * Picks the upstream for a request. `ns` is the `?ns=` query containerd adds when it uses a
 * mirror: untrusted client input, so it is validated as a bare `host[:port]` first.
 */
export function resolveUpstream(ns: string | undefined, opts: UpstreamResolverOptions): Upstream {
  const fallback = defaultUpstream(opts.defaultOrigin)
  if (ns === undefined) return fallback
  const host = canonicalHost(ns)
  if (DOCKER_HUB_ALIASES.has(host)) return { registry: DOCKER_HUB, baseUrl: new URL(DOCKER_HUB_URL) }
  // The configured origin may carry a path prefix or plain http: keep them when ns names it.
  if (host === fallback.registry) return fallback
  const insecure = opts.insecureRegistries.some((r) => r.toLowerCase() === host)
  return { registry: host, baseUrl: new URL(`${insecure ? 'http' : 'https'}://${host}`) }
}

/** The repository name as the upstream knows it: Docker Hub keeps official images under `library/`. */
export function upstreamName(upstream: Upstream, name: string): string {
  return upstream.registry === DOCKER_HUB && !name.includes('/') ? `library/${name}` : name
}

function canonicalHost(ns: string): string {
  const host = ns.toLowerCase()
  if (host.length === 0 || host.length > MAX_HOST_PORT_LENGTH) throw new InvalidUpstreamError(ns, 'bad length')
  const m = HOST_PORT_RE.exec(host)
  if (m === null) throw new InvalidUpstreamError(ns, 'expected host[:port]')
  const port = m[1]
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw new InvalidUpstreamError(ns, 'bad port')
  // WHATWG URL parsing is the final word: it must read the same host back, with nothing added.
  let url: URL
  try {
    url = new URL(`https://${host}`)
  } catch {
    throw new InvalidUpstreamError(ns, 'expected host[:port]')
  }
  const explicitDefaultPort = port === '443' ? `${url.hostname}:443` : url.host
  if (explicitDefaultPort !== host || url.pathname !== '/') throw new InvalidUpstreamError(ns, 'expected host[:port]')
  return host
}

function defaultUpstream(origin: URL): Upstream {
  if (origin.protocol !== 'https:' && origin.protocol !== 'http:') {
    throw new InvalidUpstreamError(origin.protocol, 'origin must be an http(s) URL')
  }
  if (origin.username !== '' || origin.password !== '') {
    throw new InvalidUpstreamError(origin.host, 'credentials belong in the credentials config, not the URL')
  }
  const host = origin.host.toLowerCase()
  if (DOCKER_HUB_ALIASES.has(host)) return { registry: DOCKER_HUB, baseUrl: new URL(DOCKER_HUB_URL) }
  const base = new URL(origin.href)
  base.search = ''
  base.hash = ''
  base.pathname = base.pathname.replace(/\/+$/, '').replace(/\/v2$/, '')
  return { registry: host, baseUrl: base }
}

// RFC 3986 pchar without `%`: no encoded separators, no `?`/`#`, no backslash, no spaces.
const PATH_SEGMENT_RE = /^[A-Za-z0-9._~:@!$&'()*+,;=-]*$/

/** Builds `<baseUrl>/v2/<path>?<query>`; rejects paths that could leave `/v2/`. */
export function originUrl(upstream: Upstream, path: string, query?: URLSearchParams): URL {
  const segments = path.split('/')
  for (const [i, s] of segments.entries()) {
    const last = i === segments.length - 1
    // An empty segment is only allowed last (`blobs/uploads/`); `.`/`..` would climb out of /v2/.
    if ((s === '' && !last) || s === '.' || s === '..' || !PATH_SEGMENT_RE.test(s)) {
      throw new InvalidOriginPathError(path)
    }
  }
  const url = new URL(upstream.baseUrl.href)
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v2/${path}`
  const q = query?.toString() ?? ''
  url.search = q === '' ? '' : `?${q}`
  return url
}

/**
 * Maps a `Location` the origin sent (upload sessions) back to a path below `/v2/` and a query,
 * so the agent can hand its own URL to the client and forward the next request. Undefined when
 * the location lies outside this upstream's `/v2/`.
 */
export function parseOriginLocation(
  upstream: Upstream,
  location: string,
): { path: string; query: URLSearchParams } | undefined {
  let url: URL
  try {
    url = new URL(location, upstream.baseUrl)
  } catch {
    return undefined
  }
  const prefix = `${upstream.baseUrl.pathname.replace(/\/+$/, '')}/v2/`
  if (url.origin !== upstream.baseUrl.origin || !url.pathname.startsWith(prefix)) return undefined
  return { path: url.pathname.slice(prefix.length), query: url.searchParams }
}
