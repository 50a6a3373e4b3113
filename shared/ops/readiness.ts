/**
 * What a node still waits for before it can serve (store open, libp2p started). `/readyz` answers 503 with the
 * first pending step as its reason. Peers are never a step: the first node of a swarm has none and must still
 * become ready.
 */
export class Readiness {
  readonly #pending: string[]

  constructor(steps: readonly string[]) {
    this.#pending = [...steps]
  }

  /** Marks a step done; unknown or repeated steps are ignored. */
  done(step: string): void {
    const i = this.#pending.indexOf(step)
    if (i !== -1) this.#pending.splice(i, 1)
  }

  /** undefined when ready, else why not. */
  reason(): string | undefined {
    const next = this.#pending[0]
    return next === undefined ? undefined : `waiting for ${next}`
  }
}
