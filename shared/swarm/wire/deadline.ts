/**
 * A signal that aborts when any parent aborts or when `timeoutMs` passes, whichever is first. Unlike
 * AbortSignal.any + AbortSignal.timeout it leaves no timer or listener behind once disposed, which matters for
 * a server that handles thousands of short requests.
 */
export interface Deadline {
  readonly signal: AbortSignal
  /** True when the timeout, not a parent, aborted the signal. */
  readonly timedOut: boolean
  dispose(): void
}

export function deadline(
  timeoutMs: number,
  onTimeout: () => Error,
  parents: readonly (AbortSignal | undefined)[],
): Deadline {
  const controller = new AbortController()
  let timedOut = false
  const cleanups: (() => void)[] = []
  const dispose = (): void => {
    for (const c of cleanups.splice(0)) c()
  }
  for (const parent of parents) {
    if (parent === undefined) continue
    if (parent.aborted) {
      controller.abort(parent.reason)
      break
    }
    const onAbort = (): void => {
      dispose()
      controller.abort(parent.reason)
    }
    parent.addEventListener('abort', onAbort, { once: true })
    cleanups.push(() => parent.removeEventListener('abort', onAbort))
  }
  if (!controller.signal.aborted && Number.isFinite(timeoutMs)) {
    const timer = setTimeout(() => {
      dispose()
      timedOut = true
      controller.abort(onTimeout())
    }, timeoutMs)
    cleanups.push(() => clearTimeout(timer))
  }
  if (controller.signal.aborted) dispose()
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut
    },
    dispose,
  }
}
