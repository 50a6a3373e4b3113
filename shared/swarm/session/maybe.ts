import type { MaybePromise } from './types.ts'

// Continuations over a value that may come now or later: a collaborator that answers at once (the simulator's) is
// continued synchronously, so a session on virtual time never waits on a microtask its event queue cannot see.

export function mapMaybe<T, U>(value: MaybePromise<T>, f: (value: T) => U): MaybePromise<U> {
  return value instanceof Promise ? value.then(f) : f(value)
}

// Not named `then`: a module exporting `then` is a thenable, and importing it dynamically would call it.
export function settle<T>(value: MaybePromise<T>, ok: (value: T) => void, fail: (err: unknown) => void): void {
  if (!(value instanceof Promise)) return ok(value)
  value.then(ok, fail)
}
