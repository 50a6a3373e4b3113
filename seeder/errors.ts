/**
 * The seeder's errors, each with a `name` and a stable `code` callers and tests match on. The origin's own answers
 * come as the origin client's OriginStatusError (re-exported here), whose `status` a preheat job records.
 */
export { OriginStatusError } from '../shared/origin/index.ts'

/** A blob or image on a registry this seeder has no upstream (nor credentials) for. */
export class RegistryNotAllowedError extends Error {
  override name = 'RegistryNotAllowedError'
  readonly code = 'REGISTRY_NOT_ALLOWED'
}

/** The puller was stopped (seeder shutdown): no pull starts any more, those under way were aborted. */
export class PullerStoppedError extends Error {
  override name = 'PullerStoppedError'
  readonly code = 'PULLER_STOPPED'
}

/** A preheat request that cannot be read (bad image reference, platforms, scope). */
export class InvalidPreheatRequestError extends Error {
  override name = 'InvalidPreheatRequestError'
  readonly code = 'INVALID_PREHEAT_REQUEST'
}

/** A preheat job failed; `status` is the origin's when it refused the manifest or a blob. */
export class PreheatFailedError extends Error {
  override name = 'PreheatFailedError'
  readonly code = 'PREHEAT_FAILED'
  readonly status: number | undefined
  constructor(message: string, status?: number) {
    super(message)
    this.status = status
  }
}

/** A registry webhook body that is not a notification envelope this seeder understands. */
export class MalformedNotificationError extends Error {
  override name = 'MalformedNotificationError'
  readonly code = 'MALFORMED_NOTIFICATION'
}
