// Edge sites: a few nodes on a fast LAN behind a thin WAN link. What a node does differently when it knows its site
// and its peers' sites: a chunk crosses into a site once. Within a site, the members a node knows agree, by the one
// election rule over those members and the chunk, which of them fetches each chunk from outside; the others wait
// and take it from that member over the LAN. A member that is gone (its `have` poll ended) is skipped at once; one
// that brings nothing in for `takeoverMs` hands the duty to the next in rendezvous order.
//
// A site is a claim a peer makes about itself, never checked: a peer lying about its site changes only who fetches
// what from where (efficiency), never what is accepted (every chunk is still proven against the signed map or a
// trusted seeder's attestation before it is written).
//
// Pure: no clock, no I/O; callers pass time in.
import { rendezvousOrder, turn } from './election.ts'

/** Whether two nodes are in the same site: both have one, and it is the same. No site is nobody's neighbour. */
export function sameSite(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && a === b
}

/** The key of chunk `index` of blob `blob` in the site election (the blob alone keys the origin fallback). */
export function chunkKey(blob: string, index: number): string {
  return `${blob}#${index}`
}

export interface SiteElectionInit {
  /** This node's id, a candidate like every member. */
  readonly self: string
  /** The blob's key (its digest): every member of the site must use the same. */
  readonly blob: string
  /** How long the acting member may bring nothing into the site before the next takes over (the stall timeout). */
  readonly takeoverMs: number
  /** When the download started: a node that has heard of no member yet waits until `joinMs` after it. */
  readonly startedAt?: number
  /** Default SITE_JOIN_MS. */
  readonly joinMs?: number
}

/**
 * How long a node that knows its site, but has heard of no other member yet, waits before it fetches from outside on
 * its own. The members of a site start pulling together in a rollout and find each other within a second or two
 * (the seeder's peer hints, then one `have` round trip): fetching alone meanwhile sends the first chunks across the
 * WAN once per member (the simulator measured 0.2 S of extra WAN bytes per site, 2 sites x 3 nodes). A site of one
 * pays this once per blob. 500 ms was tried (bench/sim/README.md, "Edge sites", fifth pass): the same figures in the
 * simulator, whose members meet within milliseconds, but on the real fleet under load (15-20) the members had not met
 * by then, and in each of four runs a layer's first chunk or two crossed into a site twice (1.05-1.12 x S).
 */
export const SITE_JOIN_MS = 2000

/**
 * A blob this small is fetched as if this node had no site: from whoever holds it, the seeder first, at once. The
 * site's rules (the join window, one member fetching while the others wait for its LAN announcement) cost a
 * second or more on a loaded machine, and save at most (M - 1) x this many bytes on the WAN link. An image's config
 * blob is one (a few KiB), and clients built on containers/image fetch it after every layer: on the real fleet
 * (2 sites x 3 nodes, 24 Mbit/s) the 949-byte config blob took 0.3-1.2 s per node at the very end of the rollout,
 * the slowest node's last second, while the WAN links were idle. A seeder sends such chunks into a site as often
 * as members ask (take-chunk.ts).
 */
export const SITE_SMALL_BLOB_BYTES = 64 * 1024

/**
 * The one test of SITE_SMALL_BLOB_BYTES, for the agent (a whole blob: `chunk` absent) and the seeder (one chunk of
 * it): every chunk of a blob that small, and a blob's short last chunk, go outside the site rules. A full chunk
 * never does, whatever the chunk size: with `--chunk-size 64KiB` every chunk is that small, and the rules must hold.
 */
export function outsideSiteRules(
  blobSize: number,
  chunk?: { readonly length: number; readonly chunkSize: number },
): boolean {
  if (blobSize <= SITE_SMALL_BLOB_BYTES) return true
  return chunk !== undefined && chunk.length < chunk.chunkSize && chunk.length <= SITE_SMALL_BLOB_BYTES
}

/**
 * A site where no member brought any chunk in for longer than this is stalled as a whole (its WAN link is down or
 * the outside has nothing to give): that time is not held against the acting member, so a WAN outage moves no duty
 * and sends no second member to the origin. Well above the gap between two chunks reaching a busy site (a 1 MiB
 * chunk every 0.35 s on 24 Mbit/s), well below the stall timeout.
 */
export const SITE_QUIET_MS = 5000

/**
 * How long a same-site peer that asked this node for the blob's `have` is a candidate in the election before it
 * answers this node's own `have` (`heard`, then `join`). This node follows an asker at its next rediscovery (every
 * second), so a reachable asker is a member within a round trip or two; one it cannot reach, or does not follow (its
 * tracked-peer cap is full), holds back the chunks it wins for this long at most, once.
 */
export const SITE_ASKER_MS = 15_000

/**
 * How long after a seeder first answered this node `busy` for a chunk the chunk is asked of no peer of another site
 * (only of the seeder again, or of the site once a member holds it). A seeder sends each chunk once into each site and
 * answers the site's other members `busy` for it until its copy has had time to be announced over the LAN
 * (SITE_SEND_GRACE_MS after the send): a member it turned away that then took the chunk from another site's relay
 * carried it across the WAN a second time. On the real fleet under load (2 sites × 3 nodes, load 13–24) that was one
 * chunk in each run, 3.0 and 7.5 s after the seeder's copy, when a member's first `have` to another took longer than
 * the join window, so two members each won the chunk's election over the members they knew. A seeder that was busy
 * for want of a slot frees one within a second or two and is asked again meanwhile; past this, relays may serve.
 */
export const SITE_SEEDER_BUSY_MS = 8000

/**
 * A node in a site asks a peer of another site (not a seeder) for a blob's `have` again this long after each answer,
 * instead of at once: each answer then tells several new chunks, not one. Such a peer is a relay, asked for a chunk
 * only when the site's seeder copy is not to be had; the long poll on it answered once per chunk it got, on every
 * pair of members across two sites, and that was most of what the WAN link carried besides chunks: on the real fleet
 * (2 sites x 3 nodes, 24 Mbit/s, 32 MiB) 0.6 MB of libp2p traffic into each site, 0.018 S, of which 0.4 MB came
 * from the other site's agents (bench/sim/README.md, "Edge sites", fifth pass).
 */
export const SITE_OUTSIDE_HAVE_MS = 500

/**
 * A node in a site that follows a seeder looks a blob's providers up in the DHT this often while it downloads it,
 * not at every rediscovery (REDISCOVER_MS, 1 s). The seeder's `have` answers name the blob's other askers, this
 * node's site's first, and same-site askers join at once; what a lookup adds is mostly peers of other sites, each a
 * query to several DHT nodes most of which are across the WAN, per blob and per second on every node.
 */
export const SITE_LOOKUP_MS = 5000

/** Askers kept at most (each claims to be in this node's site; a peer naming ever new ids cannot grow the map). */
export const MAX_SITE_ASKERS = 256

/**
 * One node's view of its site for one blob: the members it knows (same-site peers that hold or fetch the blob), when
 * each last brought a chunk in, and which chunks it has been waiting for. Answers "may I fetch chunk i from outside
 * now, and if not, when should I ask again" and "may I fall back to the origin now".
 */
export class SiteElection {
  readonly #self: string
  readonly #blob: string
  readonly #takeoverMs: number
  readonly #joinUntil: number
  readonly #members = new Set<string>()
  readonly #down = new Set<string>()
  /** Same-site peers known by their `have` asks to this node, not (yet) members: SITE_ASKER_MS after each first asked. */
  readonly #askers = new Map<string, number>()
  /** When the next asker's SITE_ASKER_MS runs out (the cached orders count it until then). */
  #askersChangeAt = Number.POSITIVE_INFINITY
  /** When each member (this node included) last got a chunk of the blob it did not hold. */
  readonly #progressAt = new Map<string, number>()
  /** When this node first found chunk i held nowhere in the site and not its own to fetch. */
  readonly #waitingSince = new Map<number, number>()
  /** Same-site peers that asked this node for the blob's `have`: they count it in their elections too. */
  readonly #askedBy = new Set<string>()
  /** When a seeder first answered this node `busy` for chunk i: outside the site, only seeders until SITE_SEEDER_BUSY_MS. */
  readonly #seederBusyAt = new Map<number, number>()
  /** Rendezvous order per chunk over the members known then; cleared when membership changes. */
  readonly #orders = new Map<number, string[]>()
  /** The last time any member (this node included) got a chunk, and the spans the whole site got none. */
  #siteProgressAt = Number.NEGATIVE_INFINITY
  readonly #quiet: { readonly from: number; readonly to: number }[] = []

  constructor(init: SiteElectionInit) {
    if (!(init.takeoverMs > 0)) throw new RangeError(`takeover must be positive, got ${init.takeoverMs}`)
    this.#self = init.self
    this.#blob = init.blob
    this.#takeoverMs = init.takeoverMs
    this.#joinUntil = (init.startedAt ?? Number.NEGATIVE_INFINITY) + (init.joinMs ?? SITE_JOIN_MS)
  }

  /** Same-site members known now, this node excluded. */
  get members(): ReadonlySet<string> {
    return this.#members
  }

  /** A same-site peer answered for this blob: a candidate from now on (again, if it had left). */
  join(id: string, now: number): void {
    if (id === this.#self) return
    this.#down.delete(id)
    this.#askers.delete(id)
    if (this.#members.has(id)) return
    this.#members.add(id)
    if (!this.#progressAt.has(id)) this.#progressAt.set(id, now)
    this.#orders.clear()
  }

  /**
   * A same-site peer asked this node for the blob's `have`: it is fetching the blob, so it is a candidate in the
   * chunks' election from now on, before this node's own `have` to it is answered (`join`), for SITE_ASKER_MS at
   * most if it never is. Members learn of each other unevenly in the first seconds of a rollout: a member that
   * started late is told of the early ones (the seeder's hints) and asks them, while they know only each other;
   * each early one then won the election over the members it knew and fetched the first chunks alongside the late
   * one that won it over all of them (bench/sim, 20 × 10, seed 2: 9 chunks crossed into a site twice, 1.07 × S).
   * An asker the election names that brings nothing in is passed over after `takeoverMs`, as any member.
   */
  heard(id: string, now: number): void {
    if (id === this.#self) return
    // One that asked before keeps its first time: asking again does not make an unreachable asker a candidate anew.
    if (this.#askers.has(id) || this.#members.has(id)) {
      this.#askedBy.add(id)
      return
    }
    if (this.#askers.size >= MAX_SITE_ASKERS) {
      for (const [a, until] of this.#askers) if (until < now) this.#askers.delete(a)
      if (this.#askers.size >= MAX_SITE_ASKERS) return
    }
    this.#askedBy.add(id)
    const until = now + SITE_ASKER_MS
    this.#askers.set(id, until)
    this.#askersChangeAt = Math.min(this.#askersChangeAt, until)
    this.#orders.clear()
    if (!this.#progressAt.has(id)) this.#progressAt.set(id, now)
  }

  /** A member left (its `have` poll ended, it cannot be reached): skipped until it answers again. */
  leave(id: string): void {
    if (this.#members.has(id)) this.#down.add(id)
  }

  /** `id` (a member, or this node) got a chunk it lacked: it is bringing the blob in. */
  progress(id: string, now: number): void {
    if (id !== this.#self && !this.#members.has(id)) return
    this.#progressAt.set(id, now)
    const quietFrom = this.#siteProgressAt + SITE_QUIET_MS
    if (now > quietFrom && Number.isFinite(quietFrom)) this.#quiet.push({ from: quietFrom, to: now })
    if (now > this.#siteProgressAt) this.#siteProgressAt = now
  }

  /** How much of [from, now] the whole site was quiet (no member got any chunk for over SITE_QUIET_MS). */
  quietMs(from: number, now: number): number {
    let ms = 0
    const overlap = (a: number, b: number) => Math.max(0, Math.min(b, now) - Math.max(a, from))
    for (const q of this.#quiet) ms += overlap(q.from, q.to)
    if (Number.isFinite(this.#siteProgressAt)) ms += overlap(this.#siteProgressAt + SITE_QUIET_MS, now)
    return ms
  }

  /** Chunk `index` reached the site (a member holds it): nobody needs to fetch it from outside any more. */
  arrived(index: number): void {
    this.#waitingSince.delete(index)
    this.#seederBusyAt.delete(index)
  }

  /**
   * A seeder answered this node `busy` for chunk `index`. It may have sent the chunk to another member of the site
   * a moment ago (each chunk once into each site), one this node has not heard from yet: until SITE_SEEDER_BUSY_MS
   * after the first such answer, the chunk is not asked of peers of other sites (`relaysAt`).
   */
  seederBusy(index: number, now: number): void {
    if (!this.#seederBusyAt.has(index)) this.#seederBusyAt.set(index, now)
  }

  /** From when chunk `index` may be asked of peers outside the site other than seeders: `now` or earlier for now. */
  relaysAt(index: number, now: number): number {
    const at = this.#seederBusyAt.get(index)
    if (at === undefined || this.#allKnowSelf()) return now
    const until = at + SITE_SEEDER_BUSY_MS
    if (until > now) return until
    return now
  }

  /**
   * When this node may fetch chunk `index` from outside the site: `now` when it is its turn (the first live member in
   * rendezvous order, or the next after each `takeoverMs` the acting one brought nothing in), else the time to ask
   * again. A node that knows no member is a site of one and fetches once the join window has passed.
   */
  outsideAt(index: number, now: number): number {
    if (now > this.#askersChangeAt) this.#askersPassed(now)
    if (this.#members.size === 0 && this.#askersChangeAt === Number.POSITIVE_INFINITY) {
      return Math.max(now, this.#joinUntil)
    }
    const order = this.#order(index)
    if (order[0] === this.#self) return now
    let since = this.#waitingSince.get(index)
    if (since === undefined) {
      since = now
      this.#waitingSince.set(index, now)
    }
    const t = this.#turn(order, since, now)
    return t.acting === this.#self ? now : now + Math.max(1, t.graceMs)
  }

  /** The candidates for chunk `index` as this node sees them now, in rendezvous order, those gone marked `!`. */
  candidates(index: number): string[] {
    return this.#order(index).map((id) => (this.#down.has(id) ? `!${id}` : id))
  }

  /**
   * Whether this node may leave the swarm for the origin after it has been stalled `stalledMs` past the stall
   * timeout. Within a site, one member at a time: the first live one in rendezvous order for the blob, then the next
   * after each further `takeoverMs`. A WAN outage thus sends the site to the origin one node per stall timeout, never
   * all of it at once; the others keep their roles and take what the one brings in over the LAN. Time the whole
   * site was quiet does not count towards the next member's turn.
   */
  mayFallBack(overdueMs: number, now: number): boolean {
    if (this.#members.size === 0) return true
    const order = rendezvousOrder([this.#self, ...this.#members], this.#blob)
    // While the whole site is quiet (its WAN down) the first member's turn does not pass: one goes, not all.
    const stalledMs = Math.max(Math.min(overdueMs, 1), overdueMs - this.quietMs(now - overdueMs, now))
    const t = turn(order, { down: this.#down, stalledMs, stallTimeoutMs: this.#takeoverMs })
    return t.acting === this.#self || t.acting === undefined
  }

  /**
   * Whether every live member has asked this node for the blob's `have`, and so counts it in the chunks' elections
   * (askers as candidates): then no member elects itself for a chunk this node won, and a seeder's `busy` is for want
   * of a slot, not a copy sent to another member; relays may serve at once, as before (bench/sim, where members know
   * each other within a second: holding off relays after every seeder `busy` slowed 20 × 10 seed 1 from p99 1.25 to
   * 1.34 × T*_site).
   */
  #allKnowSelf(): boolean {
    for (const m of this.#members) if (!this.#down.has(m) && !this.#askedBy.has(m)) return false
    return true
  }

  /** An asker's SITE_ASKER_MS ran out: the orders are computed again without it. */
  #askersPassed(now: number): void {
    this.#orders.clear()
    let next = Number.POSITIVE_INFINITY
    for (const until of this.#askers.values()) if (until >= now) next = Math.min(next, until)
    this.#askersChangeAt = next
  }

  /** Askers within SITE_ASKER_MS of their first ask (the orders are cached until the next runs out). */
  #liveAskers(): string[] {
    const out: string[] = []
    // The same numbers compared, not a difference of them: the earliest live asker's own time is the bound.
    for (const [id, until] of this.#askers) if (until >= this.#askersChangeAt) out.push(id)
    return out
  }

  #order(index: number): string[] {
    let order = this.#orders.get(index)
    if (order === undefined) {
      const candidates = new Set([this.#self, ...this.#members, ...this.#liveAskers()])
      order = rendezvousOrder([...candidates], chunkKey(this.#blob, index))
      this.#orders.set(index, order)
    }
    return order
  }

  /** The stall of the chunk is counted from when this node started waiting, or the acting member's last progress. */
  #turn(order: readonly string[], since: number, now: number) {
    let first: string | undefined
    for (const id of order) {
      if (!this.#down.has(id)) {
        first = id
        break
      }
    }
    const progressAt = first === undefined ? since : (this.#progressAt.get(first) ?? since)
    const from = Math.max(since, progressAt)
    return turn(order, {
      down: this.#down,
      // Time the whole site was quiet is the WAN's doing, not the acting member's.
      stalledMs: now - from - this.quietMs(from, now),
      stallTimeoutMs: this.#takeoverMs,
    })
  }
}
