/** A download whose bytes trickle in without completing a chunk counts as stalled after this many stall windows. */
export const UNVERIFIED_STALL_FACTOR = 4

/**
 * How long a download has been stalled, to compare with the stall timeout: the time since any chunk byte arrived,
 * or a quarter of the time since the last verified chunk, whichever is longer. So a swarm that sends nothing is
 * left after one stall timeout, and one that only trickles bytes (never finishing a chunk) after four.
 */
export function stalledMs(now: number, lastByteAt: number, lastVerifiedAt: number): number {
  return Math.max(now - lastByteAt, (now - lastVerifiedAt) / UNVERIFIED_STALL_FACTOR)
}

/**
 * The stall clocks of one node's swarm downloads. A blob that gets no byte while the node's other blobs do is
 * waiting for its turn on a busy downlink, or behind a seeder still pulling it from the origin: it is not stalled,
 * and the origin would only share the same downlink (on a thin origin uplink, every node falling back at once
 * swamps it). So the byte clock is the node's; the verified-chunk clock stays the blob's, which bounds that wait
 * at UNVERIFIED_STALL_FACTOR stall timeouts.
 */
export class StallClocks {
  #lastByteAt = Number.NEGATIVE_INFINITY

  /** A download starts: its clocks start now. */
  start(now: number): DownloadStallClock {
    return new DownloadStallClock(this, now)
  }

  /** A chunk byte reached this node for some download. */
  byte(now: number): void {
    if (now > this.#lastByteAt) this.#lastByteAt = now
  }

  get lastByteAt(): number {
    return this.#lastByteAt
  }
}

export class DownloadStallClock {
  readonly #node: StallClocks
  #lastByteAt: number
  #lastVerifiedAt: number

  constructor(node: StallClocks, now: number) {
    this.#node = node
    this.#lastByteAt = now
    this.#lastVerifiedAt = now
  }

  /** A byte of one of this download's chunks arrived. */
  byte(now: number): void {
    if (now > this.#lastByteAt) this.#lastByteAt = now
    this.#node.byte(now)
  }

  /** One of this download's chunks was verified. */
  verified(now: number): void {
    if (now > this.#lastVerifiedAt) this.#lastVerifiedAt = now
  }

  /** Time since this download's last byte (its own, for messages). */
  sinceByte(now: number): number {
    return now - this.#lastByteAt
  }

  /** Time since this download's last verified chunk. */
  sinceVerified(now: number): number {
    return now - this.#lastVerifiedAt
  }

  /** How long this download counts as stalled (see stalledMs), with the node's byte clock. */
  stalledMs(now: number): number {
    return stalledMs(now, Math.max(this.#lastByteAt, this.#node.lastByteAt), this.#lastVerifiedAt)
  }
}
