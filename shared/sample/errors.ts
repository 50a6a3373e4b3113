/** Options that cannot describe an image (bad platform, negative size, docker without mediaType...). */
export class SampleOptionsError extends Error {
  override name = 'SampleOptionsError'
  readonly code = 'SAMPLE_OPTIONS_INVALID'
}

/** A registry refused a sample push, or its auth flow failed. Never carries credentials. */
export class SamplePushError extends Error {
  override name = 'SamplePushError'
  readonly code = 'SAMPLE_PUSH_FAILED'
  /** HTTP status of the failing response, when there was one. */
  readonly status: number | undefined
  /** First OCI error code of the registry's body, when it sent one. */
  readonly ociCode: string | undefined

  constructor(message: string, opts: { status?: number; ociCode?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.status = opts.status
    this.ociCode = opts.ociCode
  }
}
