import type { IncomingHttpHeaders } from 'node:http'

/** Headers of an origin error response that a client needs to act on it (authenticate, retry). */
const PASSED_HEADERS = ['www-authenticate', 'content-type', 'retry-after', 'docker-distribution-api-version']

/**
 * The origin refused (401, 403, 404, 429...). The agent hands the origin's answer to the client
 * unchanged, so the origin keeps deciding who may read what.
 */
export class OriginStatusError extends Error {
  override name = 'OriginStatusError'
  readonly code = 'ORIGIN_STATUS'
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer

  constructor(
    status: number,
    headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
    body: Buffer,
  ) {
    super(`origin answered ${status}`)
    this.status = status
    const h: Record<string, string> = {}
    for (const name of PASSED_HEADERS) {
      const v = headers[name]
      if (typeof v === 'string') h[name] = v
      else if (Array.isArray(v) && v.length > 0) h[name] = v.join(', ')
    }
    this.headers = h
    this.body = body
  }
}

/** The origin could not be reached or failed (network error, 5xx): stale content may stand in. */
export class OriginUnavailableError extends Error {
  override name = 'OriginUnavailableError'
  readonly code = 'ORIGIN_UNAVAILABLE'
}
