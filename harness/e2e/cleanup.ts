/** Undo actions run in reverse order of registration; every one runs even if an earlier one fails. */
export class Cleanup {
  readonly #actions: (() => Promise<void>)[] = []

  /** Registers `action` and hands back `value`, so a start call and its undo sit on one line. */
  add<T>(value: T, action: (value: T) => Promise<void>): T {
    this.#actions.push(() => action(value))
    return value
  }

  async run(): Promise<void> {
    const errors: unknown[] = []
    for (const action of this.#actions.splice(0).reverse()) {
      try {
        await action()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, 'several cleanups failed')
  }
}
