import type { ComponentLogger, Logger } from '@libp2p/interface'
import { enabled, logger } from '@libp2p/logger'

/**
 * libp2p's component logger, without the cost of loggers nobody reads. libp2p makes a logger per stream and per
 * protocol negotiation (yamux's `_newStream`, multistream-select's `select` and `handle`, ping, identify: a
 * `newScope` each), and each is three `weald` debug instances, each asking `isatty` for its colours: ~3 % of a
 * fleet agent's CPU (bench/RESULTS.md) with DEBUG unset. Here a scope that DEBUG does not name (nor its `:error`
 * or `:trace`) gets one shared silent logger, and one that it names gets libp2p's own logger, as before.
 */
export function quietLogger(): ComponentLogger {
  return { forComponent: (name) => loggerFor(name) }
}

function loggerFor(name: string): Logger {
  if (enabled(name) || enabled(`${name}:error`) || enabled(`${name}:trace`)) return logger(name)
  return silentLogger(name)
}

function silentLogger(name: string): Logger {
  const log = (() => {}) as unknown as Logger & { error: Logger['error']; trace: Logger['trace'] }
  Object.assign(log, {
    enabled: false,
    error: () => {},
    trace: () => {},
    newScope: (scope: string) => loggerFor(`${name}:${scope}`),
  })
  return log
}
