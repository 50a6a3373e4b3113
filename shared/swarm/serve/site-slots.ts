import { UploadSlots } from './upload-slots.ts'

/**
 * Upload slots a seeder keeps for each edge site it serves (`--site` on the agents). An upload into a site runs at
 * most at that site's WAN rate, and uploads into different sites meet only on the seeder's own uplink. With one flat
 * count, the seeder's eight slots each paced at one thin WAN link used a fraction of its uplink, and a site whose
 * requests were turned away `busy` left its WAN idle while others' uploads ran (bench/sim, 20 sites × 10 nodes
 * behind 24 Mbit/s, core 480 Mbit/s: 8 × 24 of the 480 Mbit/s in use, each site's WAN link busy half the time
 * until it finished). Per site, seeds 1–3, p99 / T*_site (agents' outside slots at 3): 2 → 1.68–1.92, 3 → 1.36–1.75,
 * 4 → 1.84 (seed 1); a few in flight keep the link full across the gap between one chunk and the next.
 */
export const SEEDER_UPLOADS_PER_SITE = 3

/**
 * All uploads a seeder serves into sites at once, over every site: each holds a chunk in memory while it is sent,
 * so this bounds the memory uploads take (64 × the chunk size, 64 MiB at the default 1 MiB chunks) however many sites
 * there are. Beyond 21 sites at three each, sites share it first come first served.
 */
export const MAX_SEEDER_SITE_UPLOADS = 64

/**
 * Uploads an agent in a site serves at once to peers outside it (`--upload-slots` stay for its own site's peers).
 * Every member of a site relays through the site's one WAN uplink: with three slots each, ten members ran up to 24
 * uploads across one 24 Mbit/s uplink at a twentieth of it each, and the sites waiting on them finished their last
 * chunks long after the rest (bench/sim, 20 × 10: p99 1.36–1.75 × T*_site with 3, 1.25–1.29 with 1; 2 gave 1.37–1.54).
 * A relay that is busy sends the asker to the seeder or another site instead.
 */
export const AGENT_WAN_UPLOADS = 1

/**
 * How long after a seeder's upload of a chunk to one member of a site ends it answers the site's other members `busy`
 * for it (`oncePerPool`; while the upload runs they are answered `busy` too). The upload's slot is free once its
 * last write returns, while the tail of the chunk may still sit in socket buffers on its way across the WAN; then
 * the member verifies it and announces it over the LAN, after which the others take it from there. 2 s was too
 * short for that in the simulator with a 1 MiB send buffer (2 × 3: 1.06 × S into a site, 1.00 with 5 s; slowest
 * 1.16 → 1.11 × T*_site; unchanged without a send buffer), and on the real fleet under load the seeder sent 2.08 × S
 * into 2 sites with 2 s. The site's WAN-quiet window (SITE_QUIET_MS) is as long.
 */
export const SITE_SEND_GRACE_MS = 5000

/**
 * Longest a send into a site holds back the site's other members: a send that died without its slot being
 * released (it always is, in `finally`) must not block a chunk for longer than one slow transfer.
 */
export const SITE_SEND_HOLD_MS = 30_000

/** Pools at most: a peer naming ever new sites cannot grow the map (the receivers of others share the flat pool). */
export const MAX_SITE_POOLS = 1024

export interface SiteUploadSlotsInit {
  /** Slots of the flat pool: receivers `poolOf` puts in no pool. */
  readonly max: number
  /**
   * The pool a receiver draws on, undefined for the flat one. A seeder: the site the receiver said it is in (its
   * last `have`). An agent in a site: one pool for every peer outside it.
   */
  readonly poolOf: (peer: string) => string | undefined
  /** Slots per pool (default SEEDER_UPLOADS_PER_SITE). */
  readonly perPool?: number
  /** Slots over all pools together (default MAX_SEEDER_SITE_UPLOADS). */
  readonly maxPooled?: number
  /**
   * Each chunk once into each pool: while a chunk is being sent to one receiver of a pool, and SITE_SEND_GRACE_MS
   * after, other receivers of that pool asking for it are answered `busy` (a seeder's pools are sites).
   */
  readonly oncePerPool?: boolean
  readonly now?: () => number
  /** Waiting places per pool (default: one per slot of that pool), as UploadSlots. */
  readonly queue?: (slots: number) => number
}

/**
 * UploadSlots in pools by the receiver's side of a WAN link. On a seeder, one pool per site: a receiver in a site
 * draws on its site's pool (`perPool` slots, with UploadSlots' distinct-receiver rule and short wait within it), one
 * in no site on the flat pool, so a site's requests never wait behind another site's and one busy site cannot leave
 * another's WAN link idle. On an agent in a site, one pool for all peers outside it (AGENT_WAN_UPLOADS). A receiver
 * lying about its site only moves itself to another pool: it takes no more than that pool's slots.
 */
export class SiteUploadSlots extends UploadSlots {
  readonly #poolOf: (peer: string) => string | undefined
  readonly #perPool: number
  readonly #maxPooled: number
  readonly #now: () => number
  readonly #queue: ((slots: number) => number) | undefined
  readonly #pools = new Map<string, UploadSlots>()
  readonly #once: boolean
  /** Per pool, chunks sent or being sent: to whom, and until when others are held back. */
  readonly #sent = new Map<string, Map<string, { readonly peer: string; until: number }>>()
  /** Slots held over every pool, against maxPooled. */
  #pooledUsed = 0

  constructor(init: SiteUploadSlotsInit) {
    const now = init.now ?? Date.now
    super(init.max, { now, ...(init.queue === undefined ? {} : { queue: init.queue(init.max) }) })
    this.#poolOf = init.poolOf
    this.#perPool = init.perPool ?? SEEDER_UPLOADS_PER_SITE
    this.#maxPooled = init.maxPooled ?? MAX_SEEDER_SITE_UPLOADS
    if (!Number.isSafeInteger(this.#perPool) || this.#perPool < 1) throw new RangeError('perPool must be >= 1')
    if (!Number.isSafeInteger(this.#maxPooled) || this.#maxPooled < 1) throw new RangeError('maxPooled must be >= 1')
    this.#now = now
    this.#queue = init.queue
    this.#once = init.oncePerPool === true
  }

  override get used(): number {
    return super.used + this.#pooledUsed
  }

  override get queued(): number {
    let n = super.queued
    for (const p of this.#pools.values()) n += p.queued
    return n
  }

  override tryAcquire(peer: string, chunk?: string): (() => void) | undefined {
    const name = this.#poolOf(peer)
    const pool = this.#pool(name)
    if (pool === undefined) return super.tryAcquire(peer, chunk)
    if (this.#pooledUsed >= this.#maxPooled || this.#heldBack(name!, peer, chunk)) return undefined
    return this.#counted(pool.tryAcquire(peer), name!, peer, chunk)
  }

  override wait(peer: string, granted: (release: () => void) => void, chunk?: string): (() => boolean) | undefined {
    const name = this.#poolOf(peer)
    const pool = this.#pool(name)
    if (pool === undefined) return super.wait(peer, granted, chunk)
    // Held back for another member's copy: no wait, `busy` at once (a freed slot would not change that).
    if (this.#heldBack(name!, peer, chunk)) return undefined
    // A slot freed in the pool while every pooled slot is taken is still granted: the cap over pools is exceeded by
    // at most the few waiters of one pool, and a waiter is never left without its answer. A waiter granted after
    // another member of its site took the same chunk meanwhile still sends it: the wait is short (SLOT_WAIT_MS).
    return pool.wait(peer, (release) => granted(this.#counted(release, name!, peer, chunk)!))
  }

  /** Whether `chunk` is on its way to (or just reached) another receiver of pool `name`. */
  #heldBack(name: string, peer: string, chunk: string | undefined): boolean {
    if (!this.#once || chunk === undefined) return false
    const sent = this.#sent.get(name)
    const s = sent?.get(chunk)
    if (s === undefined) return false
    if (s.until <= this.#now()) {
      sent!.delete(chunk)
      return false
    }
    return s.peer !== peer
  }

  #counted(
    release: (() => void) | undefined,
    name: string,
    peer: string,
    chunk: string | undefined,
  ): (() => void) | undefined {
    if (release === undefined) return undefined
    this.#pooledUsed++
    const sending = this.#once && chunk !== undefined ? this.#sending(name, peer, chunk) : undefined
    let done = false
    return () => {
      if (done) return
      done = true
      this.#pooledUsed--
      if (sending !== undefined) sending.until = this.#now() + SITE_SEND_GRACE_MS
      release()
    }
  }

  #sending(name: string, peer: string, chunk: string): { readonly peer: string; until: number } {
    let sent = this.#sent.get(name)
    if (sent === undefined) {
      sent = new Map()
      this.#sent.set(name, sent)
    }
    const now = this.#now()
    // Forget what no longer holds anyone back; the map stays as small as the sends of the last few seconds.
    for (const [k, v] of sent) if (v.until <= now) sent.delete(k)
    const s = { peer, until: now + SITE_SEND_HOLD_MS }
    sent.set(chunk, s)
    return s
  }

  #pool(name: string | undefined): UploadSlots | undefined {
    if (name === undefined) return undefined
    let pool = this.#pools.get(name)
    if (pool === undefined) {
      if (this.#pools.size >= MAX_SITE_POOLS) return undefined
      pool = new UploadSlots(this.#perPool, {
        now: this.#now,
        ...(this.#queue === undefined ? {} : { queue: this.#queue(this.#perPool) }),
      })
      this.#pools.set(name, pool)
    }
    return pool
  }
}

/** What the slots need to know of a receiver: the site it said it is in (WanBudget learns it from `have`). */
export interface PeerSites {
  siteOf(peer: string): string | undefined
  /** Whether the peer is across the WAN from this node (not known to be in its site). */
  outside(peer: string): boolean
}

/**
 * A seeder's upload slots: `max` for agents in no site, SEEDER_UPLOADS_PER_SITE for each site's agents, and each
 * chunk once into each site: members that do not know each other yet (the first second of a rollout) each elect
 * themselves for the first chunks, and the seeder is the one place that sees both ask.
 */
export function seederUploadSlots(max: number, sites: PeerSites): UploadSlots {
  return new SiteUploadSlots({ max, poolOf: (peer) => sites.siteOf(peer), oncePerPool: true })
}

/**
 * An agent's upload slots: `max` for every peer when it names no site (as before sites); in a site, `max` for its
 * site's peers and AGENT_WAN_UPLOADS for all peers outside it together.
 */
export function agentUploadSlots(max: number, site: string | undefined, sites: PeerSites): UploadSlots {
  if (site === undefined) return new UploadSlots(max)
  return new SiteUploadSlots({
    max,
    poolOf: (peer) => (sites.outside(peer) ? 'wan' : undefined),
    perPool: AGENT_WAN_UPLOADS,
  })
}
