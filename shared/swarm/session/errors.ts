export type SessionErrorCode = 'SESSION_STALLED' | 'SESSION_INVALID_OPTIONS'

/** A download session that ended without its blob: stalled (the caller goes to the origin), or misused. */
export class SessionError extends Error {
  override name = 'SessionError'
  readonly code: SessionErrorCode

  constructor(code: SessionErrorCode, message: string) {
    super(message)
    this.code = code
  }
}
