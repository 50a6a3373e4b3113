export type SchedulerErrorCode = 'SCHEDULER_INVALID_OPTIONS' | 'SCHEDULER_BITFIELD_LENGTH'

/** A caller mistake: bad options, or a bitfield for a different chunk count. */
export class SchedulerError extends Error {
  override name = 'SchedulerError'
  readonly code: SchedulerErrorCode

  constructor(code: SchedulerErrorCode, message: string) {
    super(message)
    this.code = code
  }
}
