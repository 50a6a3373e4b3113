// The one election rule: among some candidates, who does a job for a key ("which seeder pulls this blob from the
// origin", and later "which node of a site brings this chunk across the WAN", "which agent pulls this blob when
// there is no seeder"). Rendezvous (highest-random-weight) hashing: every node that knows the same candidates
// picks the same owner without talking, and a candidate joining or leaving moves only the keys it wins or held.
// Pure: no clock, no I/O; callers pass time in.
import { createHash } from 'node:crypto'

/** A candidate is its id (a libp2p peer id as a string), or anything that carries one. */
export type Candidate = string | { readonly id: string }

/**
 * The rendezvous score of `id` for `key`: the first 4 bytes, big-endian, of sha256(id + "\n" + key). Agents and
 * seeders of every release since rendezvous was introduced rank candidates by it (highest first), so it must
 * never change: during a rolling upgrade old and new nodes have to agree on the owner.
 */
export function rendezvousScore(id: string, key: string): number {
  return weight(id, key).readUInt32BE(0)
}

/**
 * `candidates` in rendezvous order for `key`: the owner first, then the one that takes over from it, and so on.
 * Highest score first; should two distinct ids tie on the 4-byte score (about one pair in 2^32), the rest of the
 * hash decides, so every node orders the same set the same way whatever order it lists it in. An id listed twice
 * is kept once (its first entry). The input is not changed.
 */
export function rendezvousOrder<T extends Candidate>(candidates: readonly T[], key: string): T[] {
  const seen = new Set<string>()
  const ranked: { readonly c: T; readonly w: Buffer }[] = []
  for (const c of candidates) {
    const id = idOf(c)
    if (seen.has(id)) continue
    seen.add(id)
    ranked.push({ c, w: weight(id, key) })
  }
  return ranked.sort((a, b) => Buffer.compare(b.w, a.w)).map((r) => r.c)
}

/** The first of `rendezvousOrder(candidates, key)`, without sorting the rest; undefined for no candidate. */
export function rendezvousOwner<T extends Candidate>(candidates: readonly T[], key: string): T | undefined {
  let best: T | undefined
  let bestWeight: Buffer | undefined
  for (const c of candidates) {
    const w = weight(idOf(c), key)
    if (bestWeight === undefined || Buffer.compare(w, bestWeight) > 0) {
      best = c
      bestWeight = w
    }
  }
  return best
}

/** What a node knows about the candidates of one key when it asks who should act on it now. */
export interface Standing {
  /** Ids known to be gone or refusing this key (a failed dial, an error answer): skipped. */
  readonly down?: ReadonlySet<string>
  /** How long the key has shown no progress (no byte arrived) while in the hands of the candidate acting. */
  readonly stalledMs?: number
  /** After this long without progress the duty passes to the next live candidate (Infinity: never). */
  readonly stallTimeoutMs?: number
}

export interface Turn<T> {
  /** Who should act now; undefined when every candidate is down or stalled out (the caller's last resort). */
  readonly acting: T | undefined
  /** Live candidates passed over because they stalled out, in rendezvous order: count them down from now on. */
  readonly stalled: readonly T[]
  /** How much longer `acting` may show no progress before the next one takes over (Infinity: no timeout). */
  readonly graceMs: number
}

/**
 * The fallback policy over a rendezvous `order` (from `rendezvousOrder`): candidates known down are skipped; the
 * first live one acts; each full `stallTimeoutMs` without progress passes the duty to the next live one. So a
 * gone owner costs nothing once known down, and a slow one at most one stall timeout per stalled candidate. A
 * caller that resets its stall clock when a new candidate takes over adds `stalled` to its down set; one that
 * measures since the key's last progress gets the same turn by passing the total time.
 */
export function turn<T extends Candidate>(order: readonly T[], standing: Standing = {}): Turn<T> {
  const down = standing.down ?? new Set<string>()
  const timeout = standing.stallTimeoutMs ?? Infinity
  const stalledMs = Math.max(0, standing.stalledMs ?? 0)
  if (!(timeout > 0)) throw new RangeError(`stall timeout must be positive, got ${timeout}`)
  const passes = Number.isFinite(timeout) ? Math.floor(stalledMs / timeout) : 0
  const stalled: T[] = []
  for (const c of order) {
    if (down.has(idOf(c))) continue
    if (stalled.length < passes) {
      stalled.push(c)
      continue
    }
    return { acting: c, stalled, graceMs: Number.isFinite(timeout) ? (passes + 1) * timeout - stalledMs : Infinity }
  }
  return { acting: undefined, stalled, graceMs: Infinity }
}

function idOf(c: Candidate): string {
  return typeof c === 'string' ? c : c.id
}

function weight(id: string, key: string): Buffer {
  return createHash('sha256').update(id).update('\n').update(key).digest()
}
