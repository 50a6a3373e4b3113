import type { IncomingHttpHeaders } from 'node:http'
import { RegistryError } from '../shared/oci/index.ts'

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

/**
 * A write failed because the file system is out of room (or the user's disk quota is spent): a Node error with its
 * errno code, or the index database's, which only says so in its message.
 */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 4; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown }
    if (code === 'ENOSPC' || code === 'EDQUOT') return true
    if (code === 'LEVEL_IO_ERROR' && /no space left on device|disk quota exceeded/i.test(String(message))) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

/**
 * The cache cannot take this blob: its disk is full, or its quota is held by blobs being read and downloads under
 * way. 507 Insufficient Storage with an OCI body, so a runtime falls back to its next mirror or the origin; the
 * agent keeps serving what it holds.
 */
export class CacheFullError extends RegistryError {
  override name = 'CacheFullError'
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('UNAVAILABLE', message, { status: 507, ...opts })
  }
}
