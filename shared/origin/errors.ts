import { RegistryError } from '../oci/errors.ts'

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
