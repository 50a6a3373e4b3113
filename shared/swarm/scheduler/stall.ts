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
