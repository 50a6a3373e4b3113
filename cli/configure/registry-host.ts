import { ConfigureError } from './errors.ts'

const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const HOST_PORT_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*(?::[0-9]{1,5})?$`)

/** A `--registries` entry as a canonical `host[:port]` (Docker Hub's aliases become `docker.io`). */
export function parseRegistryHost(value: string): string {
  const host = value.trim().toLowerCase()
  if (DOCKER_HUB_ALIASES.has(host)) return 'docker.io'
  const port = host.includes(':') ? Number(host.slice(host.indexOf(':') + 1)) : 443
  if (!HOST_PORT_RE.test(host) || port < 1 || port > 65535) {
    throw new ConfigureError(`--registries: ${JSON.stringify(value)} is not a registry host[:port]`)
  }
  return host
}

export function parseRegistries(values: readonly string[]): string[] {
  const hosts = values.flatMap((v) => v.split(',')).filter((v) => v.trim() !== '')
  return [...new Set(hosts.map(parseRegistryHost))]
}

/** Where the registry itself answers: Docker Hub's API is not at `docker.io`. */
export function upstreamServer(host: string): string {
  return host === 'docker.io' ? 'https://registry-1.docker.io' : `https://${host}`
}

/**
 * The path component that names a registry on the agent's mirror (`127.0.0.1:5000/ghcr.io/...`): an image
 * reference cannot hold `:` in its path, so a port is written `__` (the agent reads it back; `shared/oci/route.ts`).
 */
export function mirrorPathComponent(host: string): string {
  return host.replace(':', '__')
}

/** `--mirror`: the agent's `http(s)://host:port`, with no path (clients put `/v2/` right after it). */
export function parseMirror(value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigureError(`--mirror: expected http://HOST:PORT, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigureError('--mirror: expected http(s)://')
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new ConfigureError('--mirror: expected http(s)://HOST:PORT with nothing after it')
  }
  return url
}

/** `http://127.0.0.1:5000`, the form containerd and Docker write. */
export function mirrorOrigin(mirror: URL): string {
  return mirror.origin
}
