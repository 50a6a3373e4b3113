import type { SessionClock } from './types.ts'

/** The wall clock: timers that never keep the process alive, wake-ups as microtasks. */
export function systemClock(now: () => number = Date.now): SessionClock {
  return {
    now,
    after(ms, fn) {
      setTimeout(fn, ms).unref()
    },
    soon(fn) {
      queueMicrotask(fn)
    },
  }
}
