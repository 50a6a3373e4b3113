/**
 * OCI Distribution error codes and the one error type that carries them.
 * Only the HTTP error handler turns a RegistryError into a status and an OCI body.
 */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'
  | 'UNAVAILABLE'
  | 'UNKNOWN'

export const STATUS_OF: Readonly<Record<OciErrorCode, number>> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 404,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
}

export class RegistryError extends Error {
  override name = 'RegistryError'
  readonly code: OciErrorCode
  readonly status: number
  readonly detail: unknown
  readonly headers: Readonly<Record<string, string>>

  constructor(
    code: OciErrorCode,
    message: string,
    opts: { status?: number; detail?: unknown; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.code = code
    this.status = opts.status ?? STATUS_OF[code]
    this.detail = opts.detail
    this.headers = opts.headers ?? {}
  }

  toBody(): { errors: { code: OciErrorCode; message: string; detail?: unknown }[] } {
    const e: { code: OciErrorCode; message: string; detail?: unknown } = { code: this.code, message: this.message }
    if (this.detail !== undefined) e.detail = this.detail
    return { errors: [e] }
  }
}

export class InvalidDigestError extends RegistryError {
  override name = 'InvalidDigestError'
  constructor(value: string) {
    super('DIGEST_INVALID', 'invalid digest', { detail: { digest: value.slice(0, 200) } })
  }
}

export class InvalidNameError extends RegistryError {
  override name = 'InvalidNameError'
  constructor(value: string) {
    super('NAME_INVALID', 'invalid repository name', { detail: { name: value.slice(0, 300) } })
  }
}

/** Bytes did not hash to the digest that names them. Never cached, never served cleanly. */
export class DigestMismatchError extends Error {
  override name = 'DigestMismatchError'
  readonly code = 'DIGEST_MISMATCH'
  readonly expected: string
  readonly actual: string
  constructor(expected: string, actual: string) {
    super(`digest mismatch: expected ${expected}, got ${actual}`)
    this.expected = expected
    this.actual = actual
  }
}

/** A stream ended with a different number of bytes than announced. */
export class SizeMismatchError extends Error {
  override name = 'SizeMismatchError'
  readonly code = 'SIZE_MISMATCH'
  constructor(expected: number, actual: number) {
    super(`size mismatch: expected ${expected} bytes, got ${actual}`)
  }
}
