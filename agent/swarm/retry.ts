import { setTimeout as sleep } from 'node:timers/promises'

/** Connections to a busy seeder can drop while many agents dial it at once: try a few times. */
export async function retry<T>(fn: () => Promise<T>, signal: AbortSignal, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (signal.aborted || i >= attempts || (err as { name?: string }).name === 'RemoteError') throw err
      await sleep(100 * i * i, undefined, { signal })
    }
  }
}
