// The election among agents for a cold blob when no seeder delivered it (peer proofs on): its timings, and the
// policy as pure functions (no clock, no I/O): who may stand, what a node does on its turn, how long it waits.
// The rule itself (rendezvous order, the turn over candidates) is `shared/swarm/election.ts`.
import { CHUNK_PROTOCOL } from '../../shared/swarm/protocol/index.ts'
import { turn } from '../../shared/swarm/index.ts'

/** See ElectionInit.electionSettleMs: about two DHT round trips plus the identify exchange on a loaded LAN. */
export const ELECTION_SETTLE_MS = 2000
/**
 * How long an elected peer may take to answer `fetch` (it answers once the puller at the end of its chain has the
 * origin's headers): a candidate known only from the DHT may be long gone, and its dial must not hold up the next.
 */
export const ELECTED_FETCH_TIMEOUT_MS = 10_000
/**
 * A node that ranks itself first announces the blob and looks again after this long (see electionStep): a DHT
 * provide and a lookup on a loaded LAN take about a second.
 */
export const ELECTION_CLAIM_MS = 1500
/** See ColdDuty #settle: past one bootstrap retry interval (BOOTSTRAP_RETRY_INTERVAL_MS, 15 s). */
export const ELECTION_ALONE_WAIT_MS = 20_000
/** A node with no peer at all dials its bootstrap peers again this often while it waits. */
export const ELECTION_ALONE_RETRY_MS = 1000
/** The DHT query for the peers closest to a blob's key: a few round trips on a LAN. */
export const ELECTION_LOOKUP_MS = 2000

export interface ElectionInit {
  /**
   * A node this young waits until it is this old before it elects a puller: the peers it dialled at start are
   * connected by then, so nodes started together count the same candidates (default ELECTION_SETTLE_MS).
   */
  readonly electionSettleMs?: number
  /** See ELECTION_CLAIM_MS. */
  readonly electionClaimMs?: number
  /** See ELECTION_ALONE_WAIT_MS. */
  readonly electionAloneWaitMs?: number
}

/** What the peer store knows of a peer: its addresses and the protocols it said it speaks (none before identify). */
export interface KnownPeer {
  readonly addresses: readonly unknown[]
  readonly protocols: readonly string[]
}

/** A peer-store entry that may stand: one with an address that did not identify as something not speaking Shoal. */
export function mayStand(p: KnownPeer): boolean {
  if (p.addresses.length === 0) return false
  // Identified as something that does not speak the chunk protocol: not a Shoal node.
  return p.protocols.length === 0 || p.protocols.includes(CHUNK_PROTOCOL)
}

/** Who counts against whom: this node, and the peers that never stand (trusted seeders, banned peers). */
export interface Electorate {
  readonly self: string
  readonly trusted: ReadonlySet<string>
  readonly banned: (peer: string) => boolean
}

/** The other candidates among `ids`, in their order: not this node, no seeder (it already passed), no banned peer. */
export function candidatesAmong(ids: Iterable<string>, e: Electorate): string[] {
  return [...new Set(ids)].filter((id) => id !== e.self && !e.trusted.has(id) && !e.banned(id))
}

/**
 * Whether a node has already claimed when its election begins. Only a young node claims first: an older one's
 * DHT has long met the swarm.
 */
export function claimedAtStart(ageMs: number, aloneWaitMs = ELECTION_ALONE_WAIT_MS): boolean {
  return ageMs > aloneWaitMs
}

/** What a node does on one turn of the election. */
export type ElectionStep =
  /** Ranked first, not yet claimed: announce the blob, wait ELECTION_CLAIM_MS, and look again. */
  | { readonly kind: 'claim' }
  /** Ranked first after its claim (or no one else left): it pulls the blob from the origin for the swarm. */
  | { readonly kind: 'pull' }
  /** Another candidate acts: ask it to pull (`fetch`) and follow it. */
  | { readonly kind: 'ask'; readonly peer: string }

/**
 * One turn over `order` (the rendezvous order of this node and the candidates): the first one not `down` acts. When
 * that is this node (or every other is down), it claims once, then pulls.
 */
export function electionStep(
  order: readonly string[],
  self: string,
  down: ReadonlySet<string>,
  claimed: boolean,
): ElectionStep {
  const { acting } = turn(order, { down })
  if (acting !== undefined && acting !== self) return { kind: 'ask', peer: acting }
  return claimed ? { kind: 'pull' } : { kind: 'claim' }
}

/**
 * How long a node follows the k-th candidate to act (k = `downCount` passed over before it) without progress: that
 * one may itself have been following the k before it until they stalled out, so it gets that long to take over,
 * plus one stall timeout of its own.
 */
export function followStallMs(downCount: number, stallTimeoutMs: number): number {
  return (1 + downCount) * stallTimeoutMs
}

/**
 * The waits of ColdDuty #settle, from the node's start time: the settle wait (also waited again by a node that was
 * alone and just found a peer), until when the node waits at start, and until when it waits for a first peer.
 */
export function settleTimes(
  startedAt: number,
  init: ElectionInit,
): { readonly settleMs: number; readonly settleUntil: number; readonly aloneUntil: number } {
  const settleMs = init.electionSettleMs ?? ELECTION_SETTLE_MS
  return {
    settleMs,
    settleUntil: startedAt + settleMs,
    aloneUntil: startedAt + (init.electionAloneWaitMs ?? ELECTION_ALONE_WAIT_MS),
  }
}
