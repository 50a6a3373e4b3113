import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { Upstream } from '../../shared/origin/index.ts'
import { type OriginPort, originRequest } from '../origin-port.ts'

/** Request headers a registry API call needs; hop-by-hop and client-identity headers stay here. */
const FORWARDED_REQUEST_HEADERS = [
  'accept',
  'content-type',
  'content-length',
  'content-range',
  'range',
  'docker-upload-uuid',
]
const DROPPED_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'trailer',
])

export interface PassthroughRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
  readonly upstream: Upstream
  /** Path below /v2/ with the upstream repository name already applied. */
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: IncomingHttpHeaders
  readonly body: Readable | undefined
  readonly scope: string | undefined
  readonly signal: AbortSignal
  /** The `ns` the client used, carried into rewritten Location headers so it stays on this mirror. */
  readonly ns: string | undefined
}

export interface PassthroughReply {
  readonly status: number
  readonly headers: Record<string, string | string[]>
  readonly body: Readable
}

/**
 * Pushes, deletes, tag lists and the catalog go to the origin as they are, with the client's own
 * credentials. Upload Locations that point at the origin are rewritten to this mirror, so a client
 * keeps talking to the agent (and the agent keeps its credentials out of it).
 */
export async function passThrough(origin: OriginPort, req: PassthroughRequest): Promise<PassthroughReply> {
  const headers: Record<string, string> = {}
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const v = req.headers[name]
    if (typeof v === 'string') headers[name] = v
  }
  const auth = req.headers.authorization
  const res = await originRequest(origin, req.upstream, {
    method: req.method,
    path: req.path,
    query: req.query,
    headers,
    ...(auth === undefined ? {} : { clientAuthorization: auth }),
    ...(req.scope === undefined ? {} : { scope: req.scope }),
    ...(req.body === undefined ? {} : { body: req.body }),
    signal: req.signal,
  })
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined || DROPPED_RESPONSE_HEADERS.has(k)) continue
    out[k] = v
  }
  const location = res.headers['location']
  if (typeof location === 'string') out['location'] = rewriteLocation(location, req.upstream, req.ns)
  return { status: res.status, headers: out, body: res.body }
}

/** An absolute or `/v2/`-relative Location at the origin becomes a path on this mirror. */
export function rewriteLocation(location: string, upstream: Upstream, ns: string | undefined): string {
  let url: URL
  try {
    url = new URL(location, upstream.baseUrl)
  } catch {
    return location
  }
  if (url.origin !== upstream.baseUrl.origin) return location
  const prefix = upstream.baseUrl.pathname.replace(/\/$/, '')
  if (!url.pathname.startsWith(`${prefix}/v2/`)) return location
  const path = url.pathname.slice(prefix.length)
  if (ns !== undefined) url.searchParams.set('ns', ns)
  return `${path}${url.search}`
}
