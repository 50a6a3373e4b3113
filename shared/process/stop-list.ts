/**
 * A part's shutdown as a plain ordered list of steps, as each `main.ts` wires it: the parts stop in the order
 * written, each after the one before has finished, and only once. Calling the returned `stop` again returns the
 * first call's promise, so a handle's `stop()` is idempotent without a holder of its own.
 *
 * A step that throws ends the shutdown with that error; the steps after it do not run (as before this helper: a
 * part left running is visible, one stopped out of order under another is not).
 */
export function stopList(steps: readonly (() => unknown)[]): () => Promise<void> {
  let stopping: Promise<void> | undefined
  const run = async (): Promise<void> => {
    for (const step of steps) await step()
  }
  return () => (stopping ??= run())
}
