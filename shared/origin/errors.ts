import type { Readable } from 'node:stream'
import { RegistryError } from '../oci/errors.ts'
import { MAX_STATUS_BODY_BYTES } from './constants.ts'

/** A registry name (`ns`) that is not a plain `host[:port]`: refused before any URL is built from it. */
export class InvalidUpstreamError extends RegistryError {
  override name = 'InvalidUpstreamError'
  constructor(value: string, why: string) {
    super('NAME_INVALID', `invalid upstream registry: ${why}`, { detail: { registry: value.slice(0, 300) } })
  }
}

/** A path below `/v2/` that could escape it or smuggle a query. */
export class InvalidOriginPathError extends RegistryError {
  override name = 'InvalidOriginPathError'
  constructor(value: string) {
    super('NAME_INVALID', 'invalid origin path', { detail: { path: value.slice(0, 300) } })
  }
}

export type OriginErrorCode =
  /** Connection refused/reset, DNS, timeouts: after the retries allowed. */
  | 'ORIGIN_UNREACHABLE'
  /** More redirects than MAX_REDIRECTS, or a Location that is not an http(s) URL. */
  | 'ORIGIN_BAD_REDIRECT'
  /** The token endpoint failed (network, 5xx, oversized or malformed answer). */
  | 'TOKEN_FETCH_FAILED'
  /** The challenge's realm is unusable (not http(s), or plain http for an https registry). */
  | 'TOKEN_REALM_REFUSED'
  /** A blob body broke off or ended short, and the resumes allowed did not bring the rest. */
  | 'ORIGIN_BODY_INCOMPLETE'

/**
 * The origin could not give an HTTP answer at all. An answer with any status (401, 404, 503...)
 * is not an error: it is returned to the caller, who decides.
 */
export class OriginError extends Error {
  override name = 'OriginError'
  readonly code: OriginErrorCode
  readonly registry: string

  constructor(code: OriginErrorCode, registry: string, message: string, opts: { cause?: unknown } = {}) {
    super(`${registry}: ${message}`, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.code = code
    this.registry = registry
  }
}

/** Headers of an origin error response that a client needs to act on it (authenticate, retry). */
const PASSED_HEADERS = ['www-authenticate', 'content-type', 'retry-after', 'docker-distribution-api-version']

/**
 * The origin answered, but not with the blob or manifest asked for: a refusal (401, 403, 404, 429...), a failure
 * (5xx), or an answer that cannot be used (a Range answered from another offset, no Content-Length), which counts
 * as 502 Bad Gateway. The agent hands a refusal to its client unchanged, so the origin keeps deciding who may read
 * what; the seeder records the status on the preheat job.
 */
export class OriginStatusError extends Error {
  override name = 'OriginStatusError'
  readonly code = 'ORIGIN_STATUS'
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer

  constructor(
    status: number,
    headers: Readonly<Record<string, string | string[] | undefined>> = {},
    body: Buffer = Buffer.alloc(0),
    message = `origin answered ${status}`,
  ) {
    super(message)
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

/** Turns a non-success answer into an OriginStatusError carrying its body (at most MAX_STATUS_BODY_BYTES). */
export async function originStatusError(
  res: {
    readonly status: number
    readonly headers: Readonly<Record<string, string | string[] | undefined>>
    readonly body: Readable
  },
  message?: string,
): Promise<OriginStatusError> {
  const parts: Buffer[] = []
  let n = 0
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer
      if (n + b.byteLength > MAX_STATUS_BODY_BYTES) {
        res.body.destroy()
        break
      }
      parts.push(b)
      n += b.byteLength
    }
  } catch {
    // The body is a courtesy: the status alone still says what happened.
  }
  return new OriginStatusError(res.status, res.headers, Buffer.concat(parts), message)
}
