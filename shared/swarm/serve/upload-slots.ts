/** How long a peer turned away counts as waiting for an upload slot. */
export const UPLOAD_CONTENTION_MS = 1000
/**
 * How long a request refused a slot may wait for one before it is answered `busy`. Well under the receiver's
 * shortest no-progress window (the scheduler's 1 s minimum), so a wait is never taken for a stalled peer.
 */
export const SLOT_WAIT_MS = 300

interface Waiter {
  readonly peer: string
  readonly granted: (release: () => void) => void
}

/**
 * A counting semaphore that never waits: a full server answers `busy` and the peer asks someone else. While
 * another peer has been turned away recently, a peer already holding a slot gets no second one: the slots go to
 * distinct receivers. Otherwise one receiver's pipeline can take every slot and the uplink then runs at that
 * receiver's (shared) downlink rate while the peers turned away idle (the fleet simulator showed senders at a
 * third of their uplink that way). A lone receiver still gets every slot.
 *
 * A request refused a slot may wait for one (`wait`), a few at most (`queue`, one per slot by default): the next
 * freed slot goes to the longest-waiting receiver that holds none, else to the longest-waiting one. Without the
 * wait, receivers re-ask sender after sender until one has a slot (the fleet simulator counted 93% of chunk
 * requests answered `busy`), each a round trip on the wire and a scheduling pass at both ends, and a freed slot
 * idles until the next one comes.
 */
export class UploadSlots {
  readonly max: number
  readonly #now: () => number
  #used = 0
  readonly #held = new Map<string, number>()
  /** Peers holding no slot that were turned away, with when: they are waiting. */
  readonly #waiting = new Map<string, number>()
  readonly #queue: Waiter[] = []
  readonly #queueMax: number

  constructor(max: number, opts: { now?: () => number; queue?: number } = {}) {
    this.max = max
    this.#now = opts.now ?? Date.now
    this.#queueMax = opts.queue ?? max
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.#queue.length
  }

  get used(): number {
    return this.#used
  }

  /**
   * A release function (idempotent), or undefined when `peer` should be answered `busy`. `chunk` names what the
   * slot is for (`digest#index`): this class does not look at it; pools by site do (SiteUploadSlots).
   */
  tryAcquire(peer: string, _chunk?: string): (() => void) | undefined {
    const now = this.#now()
    const held = this.#held.get(peer) ?? 0
    if (this.#used >= this.max || (held > 0 && this.#othersWaiting(peer, now))) {
      if (held === 0) this.#waiting.set(peer, now)
      return undefined
    }
    this.#waiting.delete(peer)
    return this.#take(peer)
  }

  /**
   * After `tryAcquire` refused `peer`: waits for a freed slot, which `granted` receives (synchronously from the
   * release that freed it). Returns a cancel function, true when the request was still waiting (it is dropped:
   * answer `busy`), false once granted; undefined, and no wait, when the queue is full.
   */
  wait(peer: string, granted: (release: () => void) => void, _chunk?: string): (() => boolean) | undefined {
    if (this.#queue.length >= this.#queueMax) return undefined
    const w: Waiter = { peer, granted }
    this.#queue.push(w)
    return () => {
      const i = this.#queue.indexOf(w)
      if (i < 0) return false
      this.#queue.splice(i, 1)
      return true
    }
  }

  #take(peer: string): () => void {
    this.#held.set(peer, (this.#held.get(peer) ?? 0) + 1)
    this.#used++
    let released = false
    return () => {
      if (released) return
      released = true
      this.#used--
      const left = (this.#held.get(peer) ?? 1) - 1
      if (left > 0) this.#held.set(peer, left)
      else this.#held.delete(peer)
      this.#grant()
    }
  }

  /** Freed slots go to waiting requests: receivers holding none first, then in order. */
  #grant(): void {
    while (this.#used < this.max && this.#queue.length > 0) {
      let i = this.#queue.findIndex((w) => !this.#held.has(w.peer))
      if (i < 0) i = 0
      const w = this.#queue.splice(i, 1)[0]!
      this.#waiting.delete(w.peer)
      w.granted(this.#take(w.peer))
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
