/** How long a peer turned away counts as waiting for an upload slot. */
export const UPLOAD_CONTENTION_MS = 1000

/**
 * A counting semaphore that never waits: a full server answers `busy` and the peer asks someone else. While
 * another peer has been turned away recently, a peer already holding a slot gets no second one: the slots go to
 * distinct receivers. Otherwise one receiver's pipeline can take every slot and the uplink then runs at that
 * receiver's (shared) downlink rate while the peers turned away idle (the fleet simulator showed senders at a
 * third of their uplink that way). A lone receiver still gets every slot.
 */
export class UploadSlots {
  readonly max: number
  readonly #now: () => number
  #used = 0
  readonly #held = new Map<string, number>()
  /** Peers holding no slot that were turned away, with when: they are waiting. */
  readonly #waiting = new Map<string, number>()

  constructor(max: number, opts: { now?: () => number } = {}) {
    this.max = max
    this.#now = opts.now ?? Date.now
  }

  get used(): number {
    return this.#used
  }

  /** A release function (idempotent), or undefined when `peer` should be answered `busy`. */
  tryAcquire(peer: string): (() => void) | undefined {
    const now = this.#now()
    const held = this.#held.get(peer) ?? 0
    if (this.#used >= this.max || (held > 0 && this.#othersWaiting(peer, now))) {
      if (held === 0) this.#waiting.set(peer, now)
      return undefined
    }
    this.#waiting.delete(peer)
    this.#held.set(peer, held + 1)
    this.#used++
    let released = false
    return () => {
      if (released) return
      released = true
      this.#used--
      const left = (this.#held.get(peer) ?? 1) - 1
      if (left > 0) this.#held.set(peer, left)
      else this.#held.delete(peer)
    }
  }

  #othersWaiting(peer: string, now: number): boolean {
    let others = false
    for (const [id, at] of this.#waiting) {
      if (now - at >= UPLOAD_CONTENTION_MS) this.#waiting.delete(id)
      else if (id !== peer) others = true
    }
    return others
  }
}
