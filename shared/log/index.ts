import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

/** Paths pino blanks wherever they appear: credentials never reach a log line. */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'password',
  'token',
  '*.password',
  '*.token',
  '*.authorization',
]

export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: opts.name === undefined ? {} : { component: opts.name },
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
  }
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination)
}
