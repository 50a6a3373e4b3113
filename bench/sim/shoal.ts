import { Bitfield } from '../../shared/chunks/bitfield.ts'
import { EMPTY_RETRY_MS, HAVE_WAIT_MS } from '../../shared/swarm/have-tracker.ts'
import { type Offer, OfferPlanner } from './offer-planner.ts'
import { LookupPacer } from '../../shared/swarm/lookup-pacer.ts'
import { SITE_OUTSIDE_HAVE_MS } from '../../shared/swarm/sites.ts'
import {
  DEFAULT_NODE_INFLIGHT,
  type OfferReply,
  ReceiveBudget,
  seededRandom,
  SendMeter,
  SiteSeedPlanner,
  StallClocks,
} from '../../shared/swarm/scheduler/index.ts'
import {
  type ChunkAnswer,
  type ChunkCall,
  type ChunkFetch,
  type ChunkVerifier,
  DownloadSession,
  type PartialSink,
  type SessionClock,
} from '../../shared/swarm/session/index.ts'
import { ADVERTISE_RECHECK_MS } from '../../shared/swarm/source.ts'
import { Dht } from './dht.ts'
import type { Flow } from './flows.ts'
import { type Blob, type Host, hash32, type World } from './world.ts'

const SEEDER = 'seeder'
/** Chunk answers carry no payload in the model: only their size travels, over the flows. */
const NO_BYTES = new Uint8Array(0)
const FAILED: ChunkAnswer = { kind: 'failed', error: new Error('chunk request deadline') }
const NONE: ChunkAnswer = { kind: 'none' }
const BUSY: ChunkAnswer = { kind: 'busy' }
const CHUNK: ChunkAnswer = { kind: 'chunk', bytes: NO_BYTES }
/** Every chunk in the model is honest and proven by the blob's map: the verifier answers at once. */
const HONEST: ChunkVerifier = {
  fromMap: () => 'honest',
  recheckMap: () => true,
  attested: () => true,
  check: () => {},
}

/** A chunk request on the wire: what the agent's chunk client and the sender's handler do with it. */
interface Req extends ChunkFetch {
  readonly d: Download
  readonly call: ChunkCall
  readonly key: string
  flow: Flow | undefined
  readonly sentAt: number
  /** Frees the sender's upload slot while the request holds one. */
  release: (() => void) | undefined
  /** Leaves the sender's slot queue while the request waits in it. */
  cancelWait: (() => boolean) | undefined
  aborted: boolean
  /** When the seeder began sending it (its SendMeter's upload in flight). */
  meterStart: number | undefined
  /** The last time its bytes were reported (call.progress): a second report at the same instant changes nothing. */
  progressedAt: number
  /** In its download's `flowing` list. */
  listed: boolean
  /**
   * `d.reqs` holds it under its key (what `d.reqs.get(key) === req` says, kept as a field: the byte poll asks it of
   * every request being sent on every scheduling pass).
   */
  registered: boolean
  /** An offer the receiver took (`--offers`), with its sender: the chunk flows without a request. */
  offer: Offer | undefined
  sender: AgentNode | undefined
}

/** One agent's download of one blob: the agent's DownloadSession, and what travels to and from it. */
class Download {
  readonly node: AgentNode
  readonly blob: Blob
  readonly verified: Bitfield
  /** The agent's session, from the exchange on (kept after it ends, for its counts). */
  session: DownloadSession | undefined
  readonly tracked = new Set<string>()
  /** Same-site peers among `tracked` (not counted against the cap). */
  localTracked = 0
  /** Downloads on other nodes that long-poll this one's `have` (they hear of each new chunk). */
  readonly watchers = new Set<Download>()
  /**
   * Peers of another site this download long-polls, as HaveTracker does with a site (SITE_OUTSIDE_HAVE_MS): when
   * the next ask reaches the peer, and the chunks it will answer with then.
   */
  readonly outsidePolls = new Map<string, { readyAt: number; pending: number[] | undefined }>()
  readonly interested = new Set<string>()
  readonly reqs = new Map<string, Req>()
  /**
   * Requests that were given a flow: a superset of those in `reqs` with a flow under way (stale ones are dropped when
   * #noteBytes meets them), so polling for bytes walks the few being sent, not every request awaiting an answer.
   */
  readonly flowing: Req[] = []
  /** Live here: other agents' `have` requests get a bitfield, not `none`. */
  live = false
  seederWatching = false
  /** When the DHT may be asked for this blob's providers again (the agent's rule, SwarmHolders). */
  readonly pacer: LookupPacer
  done = false
  fallback = false
  provided = false

  constructor(node: AgentNode, blob: Blob, inSite: boolean) {
    this.node = node
    this.blob = blob
    this.verified = new Bitfield(blob.chunkCount)
    // Every modelled agent follows the seeder.
    this.pacer = new LookupPacer({ inSite, followsSeeder: true })
  }
}

class AgentNode {
  readonly index: number
  readonly host: Host
  readonly downloads: Download[] = []
  pending = 0
  doneAt: number | undefined
  /** Payload bytes received, by the kind of sender. */
  fromSeeder = 0
  fromPeers = 0
  fromOrigin = 0
  /** The stall clocks of this node's downloads, as the agent keeps them. */
  readonly stall = new StallClocks()
  /** The agent's requests in flight over all its blobs; undefined with `--node-inflight 0`. */
  readonly budget: ReceiveBudget | undefined
  /** The agent offers its chunks (`--offers`): who gets its next free upload slot. */
  planner: OfferPlanner | undefined
  offerQueued = false
  /** Offers sent and not answered yet; offers taken, waiting for a free slot (in answer order). */
  asking = 0
  readonly ready: Req[] = []
  /** A pass is scheduled then for receivers paused after a `full` answer. */
  offerRetryAt = Number.POSITIVE_INFINITY

  constructor(index: number, host: Host, nodeInflight = DEFAULT_NODE_INFLIGHT) {
    this.index = index
    this.host = host
    this.budget = nodeInflight > 0 ? new ReceiveBudget(nodeInflight) : undefined
  }

  get id(): string {
    return this.host.id
  }
}

interface SeedBlob {
  readonly blob: Blob
  readonly have: Bitfield
  planner: SiteSeedPlanner | undefined
  pulling: boolean
  /** When the origin's answer came (geometry known), or undefined. */
  readyAt: number | undefined
  readonly waitingForGeometry: (() => void)[]
  readonly parked: Map<Download, number>
  readonly told: Map<Download, number>
  readonly askers: string[]
  rechecking: boolean
}

export interface ShoalStats {
  readonly requests: number
  readonly busy: number
  readonly failed: number
  readonly timedOut: number
  readonly cancelled: number
  readonly fallbacks: number
  readonly maxTracked: number
  readonly meanTracked: number
  readonly seederChunksServed: number
  /** With `--offers`: offers made by the agents' OfferPlanners, and their answers. */
  readonly offers?: {
    readonly offered: number
    readonly accepted: number
    readonly have: number
    readonly coming: number
    readonly full: number
  }
}

export interface NodeOutcome {
  readonly node: string
  readonly doneAt: number | undefined
  readonly fromSeeder: number
  readonly fromPeers: number
  readonly fromOrigin: number
}

/**
 * Shoal's rollout: a seeder (cold: pulling each blob from the origin once, chunk by chunk, as agents ask; or
 * preheated) and N agents, each running Shoal's DownloadScheduler per blob, with the seeder running Shoal's
 * SeedPlanner. What travels between them is modelled: `have` long polls (bitfields, peer hints), chunk requests
 * with `busy` answers when upload slots are taken, flows over the links, DHT provide and lookups.
 */
export class ShoalModel {
  readonly w: World
  readonly dht: Dht
  readonly agents: AgentNode[]
  readonly #byId = new Map<string, AgentNode>()
  readonly #seed: SeedBlob[]
  readonly #clock: SessionClock
  /** The seeder's uplink as it measures it (its upload slots), shared by its blobs' planners. */
  readonly meter: SendMeter
  /** Some agent offers its chunks (`--offers`). */
  readonly #offering: boolean
  #fallbacks = 0
  #seederServed = 0
  #nodesDone = 0
  /** The seeder holds the manifest: a preheat left it there, or it pulled it when the first node asked. */
  #manifestAtSeeder: boolean
  readonly #manifestWaiters: (() => void)[] = []

  constructor(w: World, preheated: boolean) {
    this.w = w
    this.#manifestAtSeeder = preheated
    const p = w.p
    this.dht = new Dht(w.q, w.random, {
      nodes: p.nodes,
      keys: w.blobs.length,
      replication: p.dhtReplication,
      provideLatencyMs: p.provideLatencyMs,
      lookupLatencyMs: p.lookupLatencyMs,
      results: p.lookupResults,
    })
    this.#clock = { now: () => w.q.now, after: (ms, fn) => w.q.after(ms, fn), soon: (fn) => w.q.after(0, fn) }
    this.agents = w.nodes.map((h, i) => new AgentNode(i, h, p.nodeInflight))
    // Agents that offer, spread evenly over the fleet: agent i when floor((i + 1) × share) > floor(i × share).
    const share = p.offerShare ?? 0
    const chunkCounts = w.blobs.map((b) => b.chunkCount)
    for (const a of this.agents) {
      if (Math.floor((a.index + 1) * share) > Math.floor(a.index * share)) {
        a.planner = new OfferPlanner({
          chunkCounts,
          random: seededRandom(hash32(p.seed, a.id, 'offers')),
          ...(p.offerFullMs === undefined ? {} : { fullBackoffMs: p.offerFullMs, wakeOnHave: true }),
        })
      }
    }
    this.#offering = this.agents.some((a) => a.planner !== undefined)
    this.meter = new SendMeter(p.seederUploadSlots)
    for (const a of this.agents) this.#byId.set(a.id, a)
    this.#seed = w.blobs.map((blob) => ({
      blob,
      have: preheated ? Bitfield.full(blob.chunkCount) : new Bitfield(blob.chunkCount),
      planner: undefined,
      pulling: preheated,
      readyAt: preheated ? 0 : undefined,
      waitingForGeometry: [],
      parked: new Map(),
      told: new Map(),
      askers: [],
      rechecking: false,
    }))
  }

  /** Every node starts its pull now. */
  start(): void {
    for (const a of this.agents) this.#startNode(a)
  }

  get nodesDone(): number {
    return this.#nodesDone
  }

  get finished(): boolean {
    return this.#nodesDone === this.agents.length
  }

  outcomes(): NodeOutcome[] {
    return this.agents.map((a) => ({
      node: a.id,
      doneAt: a.doneAt,
      fromSeeder: a.fromSeeder,
      fromPeers: a.fromPeers,
      fromOrigin: a.fromOrigin,
    }))
  }

  stats(): ShoalStats {
    let max = 0
    let sum = 0
    let n = 0
    const c = { requests: 0, busy: 0, failed: 0, timedOut: 0, cancelled: 0 }
    for (const a of this.agents) {
      for (const d of a.downloads) {
        max = Math.max(max, d.tracked.size)
        sum += d.tracked.size
        n++
        const s = d.session?.counts
        if (s === undefined) continue
        c.requests += s.requests
        c.busy += s.busy
        c.failed += s.failed
        c.timedOut += s.timedOut
        c.cancelled += s.cancelled
      }
    }
    const offers = { offered: 0, accepted: 0, have: 0, coming: 0, full: 0 }
    let offering = false
    for (const a of this.agents) {
      if (a.planner === undefined) continue
      offering = true
      for (const k of ['offered', 'accepted', 'have', 'coming', 'full'] as const) offers[k] += a.planner.counts[k]
    }
    return {
      ...c,
      ...(offering ? { offers } : {}),
      fallbacks: this.#fallbacks,
      maxTracked: max,
      meanTracked: n > 0 ? sum / n : 0,
      seederChunksServed: this.#seederServed,
    }
  }

  // ---- node: manifest, then every blob at once (skopeo copies layers in parallel) ----

  #startNode(a: AgentNode): void {
    const { q, p, origin, latMs } = this.w
    origin.extraTx += p.originControlBytesPerNode + (p.originResolveBytesPerNode ?? 0)
    // The client's manifest GET reaches the agent; the agent resolves the tag with a HEAD at the origin (a HEAD per
    // blob authorizes it later), then asks the seeder for the body by digest (shared/swarm/manifests): a preheat left
    // it there, or the seeder pulls it from the origin once, for every node asking meanwhile.
    q.after(3 * p.rttMs, () =>
      this.#manifestFromSeeder(() =>
        this.w.sendSmall(this.w.seeder, a.host, p.manifestBytes, () => {
          a.fromSeeder += p.manifestBytes
          q.after(latMs + p.rttMs, () => {
            a.pending = this.w.blobs.length
            for (const blob of this.w.blobs) {
              const d = new Download(a, blob, this.#siteName(a) !== undefined)
              a.downloads.push(d)
              this.#fill(d)
            }
          })
        }),
      ),
    )
  }

  /** Calls `ready` once the seeder holds the manifest; the first call of a cold rollout starts its one origin GET. */
  #manifestFromSeeder(ready: () => void): void {
    if (this.#manifestAtSeeder) return ready()
    this.#manifestWaiters.push(ready)
    if (this.#manifestWaiters.length > 1) return
    const { q, p, origin, latMs } = this.w
    // The GET's status line and headers, about as large as the HEAD's (bench/manifests).
    origin.extraTx += p.originResolveBytesPerNode ?? 0
    q.after(latMs + p.rttMs, () =>
      this.w.sendSmall(origin, this.w.seeder, p.manifestBytes, () => {
        this.#manifestAtSeeder = true
        for (const w of this.#manifestWaiters.splice(0)) w()
      }),
    )
  }

  #fill(d: Download): void {
    const { q, p } = this.w
    const s = this.#seed[d.blob.index]!
    // getMap from the seeder: a preheated seeder has it; a cold one answers none and the agent asks it to fetch.
    q.after(p.rttMs, () => {
      if (s.readyAt !== undefined && s.have.complete) {
        this.#exchange(d)
        return
      }
      q.after(this.w.latMs, () => {
        this.#startPull(s)
        const reply = () => q.after(this.w.latMs, () => this.#exchange(d))
        if (s.readyAt !== undefined) reply()
        else s.waitingForGeometry.push(reply)
      })
    })
  }

  // ---- seeder: the pull from the origin, have answers (super-seeding), hints ----

  #startPull(s: SeedBlob): void {
    if (s.pulling) return
    s.pulling = true
    const { q, p, net, origin, seeder } = this.w
    q.after(p.rttMs, () => {
      s.readyAt = q.now
      for (const f of s.waitingForGeometry.splice(0)) f()
      const next = (i: number) => {
        if (i >= s.blob.chunkCount) return
        net.start(origin.up, seeder.down, s.blob.chunkBytes(i), () => {
          s.have.set(i)
          s.planner?.markHave(i)
          this.#recheckParked(s)
          next(i + 1)
        })
      }
      next(0)
    })
  }

  #planner(s: SeedBlob): SiteSeedPlanner {
    if (s.planner === undefined) {
      s.planner = new SiteSeedPlanner({
        chunkCount: s.blob.chunkCount,
        have: s.have,
        meter: this.meter,
        ...(this.w.p.seedCopies === undefined ? {} : { copies: this.w.p.seedCopies }),
      })
    }
    return s.planner
  }

  /** The site a node says it is in: its own with sites known (`--site`), none in a flat swarm. */
  #siteName(a: AgentNode): string | undefined {
    const site = a.host.site
    return this.w.p.sites?.aware === true && site !== undefined ? `site-${site}` : undefined
  }

  /** How long a message between two hosts waits for a cut WAN link to come back (0 when it is up). */
  #cutDelay(src: Host, dst: Host): number {
    const c = this.w.p.sites?.cut
    return c !== undefined && this.w.cut(src, dst) ? c.toMs - this.w.q.now : 0
  }

  /** An agent's `have` long poll reaches the seeder. */
  #seederPoll(d: Download): void {
    const s = this.#seed[d.blob.index]!
    if (d.done) return
    // A `have` poll across a cut WAN link hangs until the link is back.
    const wait = this.#cutDelay(d.node.host, this.w.seeder)
    if (wait > 0) {
      this.w.q.after(wait, () => this.#seederPoll(d))
      return
    }
    const planner = this.#planner(s)
    s.askers.push(d.node.id)
    if (s.askers.length > 4 * this.w.p.hints) s.askers.splice(0, s.askers.length - 2 * this.w.p.hints)
    if (!d.seederWatching) {
      // The seeder starts long-polling this agent too (its HaveTracker), to learn what it holds.
      d.seederWatching = true
      const known = [...d.verified.indexes()]
      this.w.q.after(this.w.p.rttMs, () => {
        for (const i of known) planner.onPeerHas(d.node.id, i)
      })
    }
    const first = !s.told.has(d)
    const adv = this.#advertised(s, d)
    if (first || adv.count !== s.told.get(d)) this.#seederAnswer(s, d, adv, first)
    else {
      s.parked.set(d, this.w.q.now)
      this.#scheduleRecheck(s)
    }
  }

  #advertised(s: SeedBlob, d: Download): Bitfield {
    const adv = this.#planner(s).advertiseFor(d.node.id, this.w.q.now, this.#siteName(d.node))
    for (const i of adv.indexes()) if (!s.have.has(i)) adv.clear(i)
    return adv
  }

  #seederAnswer(s: SeedBlob, d: Download, adv: Bitfield, first: boolean): void {
    s.parked.delete(d)
    s.told.set(d, adv.count)
    const hints: string[] = []
    // With sites known, the seeder names the asker's own site's askers first (what the agent prefers anyway).
    const site = this.#siteName(d.node)
    if (site !== undefined) {
      for (let i = s.askers.length - 1; i >= 0 && hints.length < this.w.p.hints; i--) {
        const id = s.askers[i]!
        const other = this.#byId.get(id)
        if (id !== d.node.id && !hints.includes(id) && other !== undefined && this.#siteName(other) === site) {
          hints.push(id)
        }
      }
    }
    for (let i = s.askers.length - 1; i >= 0 && hints.length < this.w.p.hints; i--) {
      const id = s.askers[i]!
      if (id !== d.node.id && !hints.includes(id)) hints.push(id)
    }
    const complete = s.have.complete && adv.count === s.have.count
    this.w.q.after(this.w.latMs, () => {
      const session = d.session
      if (d.done || session === undefined || session.ended) return
      if (first) session.addPeer(SEEDER, 'seeder', adv)
      else for (const i of adv.indexes()) session.peerHas(SEEDER, i)
      for (const h of hints) this.#track(d, h)
      // An answer that brings nothing new still wakes the loop, as the model always has.
      session.wake()
      if (!complete) this.w.q.after(this.w.latMs, () => this.#seederPoll(d))
    })
  }

  #scheduleRecheck(s: SeedBlob): void {
    if (s.rechecking) return
    s.rechecking = true
    this.w.q.after(ADVERTISE_RECHECK_MS, () => {
      s.rechecking = false
      this.#recheckParked(s)
      if (s.parked.size > 0) this.#scheduleRecheck(s)
    })
  }

  #recheckParked(s: SeedBlob): void {
    const now = this.w.q.now
    for (const [d, since] of [...s.parked]) {
      if (d.done) {
        s.parked.delete(d)
        continue
      }
      const adv = this.#advertised(s, d)
      if (adv.count !== s.told.get(d) || now - since >= HAVE_WAIT_MS) this.#seederAnswer(s, d, adv, false)
    }
  }

  // ---- agent: the real DownloadSession, over the model's links and virtual time ----

  #exchange(d: Download): void {
    const { q, p } = this.w
    const a = d.node
    const sink: PartialSink = {
      has: (i) => d.verified.has(i),
      verified: () => d.verified.indexes(),
      write: (i) => {
        d.verified.set(i)
        this.#held(a, d, i)
      },
    }
    const session = new DownloadSession(
      {
        clock: this.#clock,
        fetcher: { fetch: (call) => this.#request(d, call), poll: () => this.#noteBytes(d) },
        holders: {
          follow: () => {
            d.tracked.add(SEEDER)
            q.after(this.w.latMs, () => this.#seederPoll(d))
          },
          discover: () => this.#discover(d),
        },
        verifier: HONEST,
        sink,
        events: {
          firstChunk: () => this.#announce(d),
          received: (peer, _kind, index) => {
            const bytes = d.blob.chunkBytes(index)
            if (peer === SEEDER) a.fromSeeder += bytes
            else a.fromPeers += bytes
            this.#notify(d, [index])
          },
        },
      },
      {
        chunkCount: d.blob.chunkCount,
        chunkBytes: d.blob.chunkBytes,
        stallTimeoutMs: p.stallTimeoutMs,
        random: seededRandom(hash32(p.seed, a.id, d.blob.index)),
        stall: a.stall,
        ...(a.budget === undefined ? {} : { budget: a.budget }),
        signal: new AbortController().signal,
        ...(this.#siteName(a) === undefined
          ? {}
          : { site: { name: this.#siteName(a)!, self: a.id, blob: `blob-${d.blob.index}` } }),
        // The model's flows report their bytes when polled, and every answer wakes the session: ticking at the
        // rediscovery period instead of every TICK_MS only makes timeouts show up later, and saves events.
        tickMs: p.lookupPeriodMs,
        rediscoverMs: p.lookupPeriodMs,
        scheduler: {
          ...(p.inflightPerPeer === undefined
            ? {}
            : { maxInflightPerPeer: p.inflightPerPeer, maxInflightPerFastPeer: p.inflightPerPeer }),
          ...(p.inflightTotalMs === undefined ? {} : { inflightTotalMs: p.inflightTotalMs }),
          ...(p.busyBackoffMs === undefined ? {} : { busyBackoffMs: p.busyBackoffMs }),
          ...(p.maxBusyBackoffMs === undefined ? {} : { maxBusyBackoffMs: p.maxBusyBackoffMs }),
        },
      },
    )
    d.session = session
    d.live = true
    session.start((failure) => (failure === undefined ? this.#finish(d) : this.#fallBack(d)))
  }

  #discover(d: Download): void {
    for (const id of d.interested) this.#track(d, id)
    d.interested.clear()
    if (!d.pacer.start(this.w.q.now)) return
    this.dht.lookup(d.node.index, d.blob.index, (ids) => {
      if (d.done) return
      const before = d.tracked.size
      for (const id of ids) this.#track(d, id)
      d.pacer.finished(d.tracked.size - before, this.w.q.now)
    })
  }

  /** Starts the `have` long poll on a peer, as HaveTracker.track does. */
  #track(d: Download, id: string): void {
    if (id === d.node.id || d.tracked.has(id)) return
    const other = this.#byId.get(id)
    if (other === undefined) return
    // Same-site peers are followed beyond the cap: the seeder names them apart (`sitePeers`), and a site's election
    // needs every member to know the others.
    const site = this.#siteName(d.node)
    const local = site !== undefined && this.#siteName(other) === site
    const cap = this.w.p.maxPeers
    if (!local && cap > 0 && d.tracked.size - d.localTracked - 1 >= cap) return
    if (local) d.localTracked++
    d.tracked.add(id)
    const ask = () => {
      this.w.q.after(this.w.latMs + this.#cutDelay(d.node.host, other.host), () => {
        if (d.done) return
        const od = other.downloads[d.blob.index]
        if (od === undefined || !od.live) {
          this.w.q.after(this.w.latMs + EMPTY_RETRY_MS, ask)
          return
        }
        od.interested.add(d.node.id)
        // The `have` request says the asker's site: a same-site asker is a candidate in the site election at once.
        od.session?.heardFrom(d.node.id, this.#siteName(d.node))
        od.watchers.add(d)
        const bits = od.verified.clone()
        this.w.q.after(this.w.latMs, () => {
          if (d.done) return
          d.session?.addPeer(id, 'peer', bits, this.#siteName(other))
          // Both offer: this node offers to `other` what it lacks, and asks it for nothing (its offers come). With
          // sites known, only within a site: across the WAN the site election decides who brings a chunk in.
          if (
            d.node.planner !== undefined &&
            other.planner !== undefined &&
            d.session !== undefined &&
            this.#siteName(d.node) === this.#siteName(other)
          ) {
            d.node.planner.peerHave(d.blob.index, id, bits)
            d.session.offersFrom(id)
            this.#offerSoon(d.node)
          }
        })
      })
    }
    ask()
  }

  /** Flows under way into this download are bytes arriving: the chunk client's onProgress. */
  #noteBytes(d: Download): void {
    const now = this.w.q.now
    const list = d.flowing
    let kept = 0
    for (let i = 0; i < list.length; i++) {
      const req = list[i]!
      if (req.flow === undefined || !req.registered) {
        req.listed = false
        continue
      }
      list[kept++] = req
      if (req.flow.done || req.progressedAt === now) continue
      req.progressedAt = now
      req.call.progress()
    }
    list.length = kept
  }

  #request(d: Download, call: ChunkCall): Req {
    const { q, p, latMs } = this.w
    const { peer, index } = call
    const req = this.#newReq(d, call, undefined)
    q.after(latMs, () => {
      if (req.aborted) return
      const reply = (answer: ChunkAnswer) => q.after(latMs, () => this.#settle(req, answer))
      const seederSide = peer === SEEDER
      const host = seederSide ? this.w.seeder : this.#byId.get(peer)?.host
      if (host === undefined) return reply(NONE)
      // Across a cut WAN link the request is never answered: the client's deadline fails it.
      if (this.w.cut(host, d.node.host)) return this.#deadline(req)
      const holds = seederSide
        ? this.#seed[d.blob.index]!.have.has(index)
        : (this.#byId.get(peer)?.downloads[d.blob.index]?.verified.has(index) ?? false)
      if (!holds) return reply(NONE)
      const serve = (release: () => void) => this.#serve(req, host, release)
      const slots = host.slots
      const chunk = `blob-${d.blob.index}#${index}`
      const release = slots?.tryAcquire(d.node.id, chunk)
      if (release !== undefined) return serve(release)
      // The sender's handler waits a little for a freed slot (takeChunk), then answers busy.
      const cancel = p.slotWaitMs > 0 ? slots?.wait(d.node.id, serve, chunk) : undefined
      if (cancel === undefined) return reply(BUSY)
      req.cancelWait = cancel
      q.after(p.slotWaitMs, () => {
        if (cancel()) {
          req.cancelWait = undefined
          reply(BUSY)
        }
      })
    })
    return req
  }

  /** The sender has a slot for the request: it sends the chunk. */
  #serve(req: Req, host: Host, release: () => void): void {
    const { q, p, latMs } = this.w
    const { d } = req
    const { peer, index } = req.call
    req.cancelWait = undefined
    if (req.aborted) {
      this.#offerEnded(req, false)
      release()
      this.#slotFreed(host)
      return
    }
    const seederSide = peer === SEEDER
    const reply = (answer: ChunkAnswer) => q.after(latMs, () => this.#settle(req, answer))
    if (!seederSide) this.#byId.get(peer)?.downloads[d.blob.index]?.interested.add(d.node.id)
    const bytes = d.blob.chunkBytes(index)
    // The handler holds its upload slot until its last write returns: with a send buffer of B bytes, that is
    // when all but B bytes have left the link; the rest drains after the slot is free.
    const held = Math.max(0, bytes - p.sendBufferBytes)
    const startedAt = q.now
    if (seederSide) {
      this.#seed[d.blob.index]!.planner?.begin(d.node.id, index, startedAt)
      req.meterStart = startedAt
    }
    req.release = release
    // The agent's per-request deadline counts from the request; only an accepted one can run into it (a `busy`
    // or `failed` answer is back one round trip later), so it is scheduled here, keeping the queue small.
    this.#deadline(req)
    const drained = () => {
      req.flow = undefined
      this.#offerEnded(req, true)
      if (seederSide) {
        this.#seederServed++
        req.meterStart = undefined
        this.#seed[d.blob.index]!.planner?.end(d.node.id, index, startedAt, bytes, q.now)
        this.#seed[d.blob.index]!.planner?.onServed(d.node.id, index, q.now)
      }
      reply(CHUNK)
    }
    const free = () => {
      req.release?.()
      req.release = undefined
      this.#slotFreed(host)
    }
    this.#listFlowing(req)
    if (held === 0) {
      free()
      req.flow = this.w.send(host, d.node.host, bytes, drained)
      return
    }
    req.flow = this.w.send(host, d.node.host, held, () => {
      free()
      if (held === bytes) drained()
      else {
        req.flow = this.w.send(host, d.node.host, bytes - held, drained)
        this.#listFlowing(req)
      }
    })
  }

  // ---- offers (`--offers`): a sender with a free upload slot picks who gets it ----

  /** Node `a` verified chunk `i` of `d`'s blob: it may offer it. */
  #held(a: AgentNode, d: Download, i: number): void {
    if (a.planner === undefined) return
    a.planner.hold(d.blob.index, i)
    this.#offerSoon(a)
  }

  /** The host whose upload slot a request holds. */
  #senderHost(req: Req): Host {
    const peer = req.call.peer
    return peer === SEEDER ? this.w.seeder : (this.#byId.get(peer)?.host ?? this.w.seeder)
  }

  /** An upload slot of `host` was freed: an offering agent looks for whom to give it. */
  #slotFreed(host: Host): void {
    const a = this.#byId.get(host.id)
    if (a?.planner !== undefined) this.#offerSoon(a)
  }

  /** One offer pass at `a` soon (coalesced). */
  #offerSoon(a: AgentNode): void {
    if (a.offerQueued) return
    a.offerQueued = true
    this.w.q.after(0, () => {
      a.offerQueued = false
      this.#offerPass(a)
    })
  }

  /**
   * Gives `a`'s free upload slots to offers taken, in the order they were taken; then offers more while fewer than
   * one slot's worth beyond its slots are out (asked or waiting), so a slot that frees finds its next chunk taken
   * already instead of idling for the offer's round trip.
   */
  #offerPass(a: AgentNode): void {
    const planner = a.planner!
    const slots = a.host.slots!
    const now = this.w.q.now
    while (a.ready.length > 0 && slots.used < slots.max && slots.queued === 0) {
      const req = a.ready[0]!
      const release = slots.tryAcquire(req.d.node.id, `blob-${req.d.blob.index}#${req.call.index}`)
      if (release === undefined) break
      a.ready.shift()
      this.#serve(req, a.host, release)
    }
    while (slots.used + a.ready.length + a.asking < slots.max + (this.w.p.offerAhead ?? 0)) {
      const offer = planner.pick(now)
      if (offer === undefined) {
        const at = planner.retryAt
        if (at < a.offerRetryAt) {
          a.offerRetryAt = at
          this.w.q.at(at, () => {
            if (a.offerRetryAt === at) a.offerRetryAt = Number.POSITIVE_INFINITY
            this.#offerSoon(a)
          })
        }
        return
      }
      a.asking++
      this.#offer(a, offer)
    }
  }

  /**
   * The offer travels to the receiver, whose session takes it or declines; the answer travels back, and the sender
   * then sends the chunk in the slot it kept, or frees the slot and looks again.
   */
  #offer(a: AgentNode, offer: Offer): void {
    const { q, latMs } = this.w
    const planner = a.planner!
    const to = this.#byId.get(offer.peer)
    q.after(latMs, () => {
      const od = to?.downloads[offer.blob]
      let reply: OfferReply = { answer: 'full', index: offer.index }
      let req: Req | undefined
      if (od !== undefined && (od.done || od.session?.ended === true)) reply = { answer: 'have', index: offer.index }
      else if (od?.session !== undefined) {
        reply = od.session.offered(a.id, offer.index, (call) => {
          req = this.#newReq(od, call, a)
          return req
        })
      }
      q.after(latMs, () => {
        a.asking--
        const taken = planner.answered(offer, reply, q.now)
        if (req !== undefined) {
          req.offer = taken
          a.ready.push(req)
        }
        this.#offerPass(a)
      })
    })
  }

  /**
   * A request in flight for `d`, registered under its key: a pull, or (with `sender`) an offer the receiver took, sent
   * in the slot the sender kept for it.
   */
  #newReq(d: Download, call: ChunkCall, sender: AgentNode | undefined): Req {
    const key = `${call.peer}/${call.index}`
    const req: Req = {
      d,
      call,
      key,
      flow: undefined,
      sentAt: this.w.q.now,
      release: undefined,
      cancelWait: undefined,
      aborted: false,
      meterStart: undefined,
      progressedAt: -1,
      listed: false,
      registered: true,
      offer: undefined,
      sender,
      abort: () => {
        if (req.registered) {
          d.reqs.delete(key)
          req.registered = false
        }
        this.#cut(req)
      },
    }
    const replaced = d.reqs.get(key)
    if (replaced !== undefined) replaced.registered = false
    d.reqs.set(key, req)
    return req
  }

  /** Empties `d.reqs`. */
  #forgetReqs(d: Download): void {
    for (const req of d.reqs.values()) req.registered = false
    d.reqs.clear()
  }

  /** A taken offer is over (once): sent whole, or cut. */
  #offerEnded(req: Req, sent: boolean): void {
    const offer = req.offer
    if (offer === undefined) return
    req.offer = undefined
    req.sender?.planner?.ended(offer, sent)
  }

  /** Puts a request given a flow in its download's `flowing` list (once). */
  #listFlowing(req: Req): void {
    if (req.listed) return
    req.listed = true
    req.d.flowing.push(req)
  }

  /** The agent's per-request deadline, counted from the request. */
  #deadline(req: Req): void {
    this.w.q.at(req.sentAt + this.w.p.chunkDeadlineMs, () => {
      if (req.aborted || !req.registered) return
      this.#cut(req)
      this.#settle(req, FAILED)
    })
  }

  /**
   * A WAN link goes down: transfers across it stop (their bytes so far are lost) and their requests fail at the
   * client's deadline, as a TCP connection that stops moving does.
   */
  cutWan(site: number): void {
    for (const a of this.agents) {
      for (const d of a.downloads) {
        for (const req of d.reqs.values()) {
          const flow = req.flow
          if (flow === undefined || flow.done) continue
          const wan = this.w.wan[site]!
          if (!flow.links.includes(wan.up) && !flow.links.includes(wan.down)) continue
          this.#cut(req)
          req.aborted = false
          this.#deadline(req)
        }
      }
    }
  }

  /** Stops a request on the wire: its flow, if any, frees the sender's upload slot. */
  #cut(req: Req): void {
    req.aborted = true
    if (req.meterStart !== undefined) {
      this.#seed[req.d.blob.index]!.planner?.end(req.d.node.id, req.call.index, req.meterStart, 0, this.w.q.now)
    }
    req.meterStart = undefined
    req.cancelWait?.()
    req.cancelWait = undefined
    if (req.flow !== undefined && !req.flow.done) this.w.net.cancel(req.flow)
    const freed = req.release !== undefined
    req.release?.()
    req.release = undefined
    req.flow = undefined
    this.#offerEnded(req, false)
    if (freed) this.#slotFreed(req.sender?.host ?? this.#senderHost(req))
  }

  /** The answer reaches the agent's chunk client. */
  #settle(req: Req, answer: ChunkAnswer): void {
    const d = req.d
    if (!req.registered) return
    d.reqs.delete(req.key)
    req.registered = false
    req.call.settle(answer)
  }

  /** The DHT hears of this node as a provider after its first chunk. */
  #announce(d: Download): void {
    if (d.provided) return
    d.provided = true
    this.dht.provide(d.node.index, d.node.id, d.blob.index)
  }

  /** New chunks here: whoever long-polls this download hears of them one hop later. */
  #notify(d: Download, indexes: readonly number[]): void {
    const watchers = [...d.watchers]
    const s = this.#seed[d.blob.index]!
    const toSeeder = d.seederWatching
    const site = this.#siteName(d.node)
    // In a flat swarm (no site known) every watcher is near.
    let near = watchers
    if (this.w.p.sites?.aware === true) {
      near = []
      for (const w of watchers) {
        const ws = this.#siteName(w.node)
        if (ws === undefined || ws === site) near.push(w)
        else this.#outsideHave(w, d, indexes)
      }
    }
    const offering = this.#offering
    this.w.q.after(this.w.latMs, () => {
      // An offering agent keeps following who lacks what after its own download is done: it still offers.
      for (const w of offering ? watchers : []) {
        if (w.node.planner !== undefined) for (const i of indexes) w.node.planner.peerHas(d.blob.index, d.node.id, i)
      }
      for (const w of near) {
        if (w.done || w.session === undefined) continue
        for (const i of indexes) w.session.peerHas(d.node.id, i)
      }
      if (toSeeder) for (const i of indexes) s.planner?.onPeerHas(d.node.id, i)
    })
  }

  /**
   * `w` (in a site) long-polls `d`, a peer of another site, pausing SITE_OUTSIDE_HAVE_MS after each answer: news
   * that comes while its next ask is on the way waits for the ask, and goes with whatever else came meanwhile.
   */
  #outsideHave(w: Download, d: Download, indexes: readonly number[]): void {
    const { q, latMs } = this.w
    const id = d.node.id
    let poll = w.outsidePolls.get(id)
    if (poll === undefined) {
      poll = { readyAt: q.now, pending: undefined }
      w.outsidePolls.set(id, poll)
    }
    if (poll.pending !== undefined) {
      poll.pending.push(...indexes)
      return
    }
    const p = poll
    p.pending = [...indexes]
    const answerAt = Math.max(q.now, p.readyAt)
    // The answer travels back, the poller pauses, its next ask travels to the peer.
    p.readyAt = answerAt + latMs + SITE_OUTSIDE_HAVE_MS + latMs
    q.after(answerAt - q.now + latMs, () => {
      const got = p.pending ?? []
      p.pending = undefined
      if (w.done || w.session === undefined) return
      for (const i of got) w.session.peerHas(id, i)
    })
  }

  /** The session stalled: the agent gets the rest from the origin. */
  #fallBack(d: Download): void {
    this.#fallbacks++
    for (const req of [...d.reqs.values()]) this.#cut(req)
    this.#forgetReqs(d)
    d.fallback = true
    const { q, origin, latMs, p } = this.w
    const prefix = d.verified.firstMissing()
    let bytes = 0
    for (let i = prefix; i < d.blob.chunkCount; i++) bytes += d.blob.chunkBytes(i)
    q.after(p.rttMs + this.#cutDelay(origin, d.node.host), () => {
      this.w.send(origin, d.node.host, bytes, () => {
        q.after(latMs, () => {
          d.node.fromOrigin += bytes
          const fresh: number[] = []
          for (let i = 0; i < d.blob.chunkCount; i++) if (!d.verified.has(i)) fresh.push(i)
          if (fresh.length > 0) {
            for (const i of fresh) {
              d.verified.set(i)
              this.#held(d.node, d, i)
            }
            this.#announce(d)
            this.#notify(d, fresh)
          }
          this.#finish(d)
        })
      })
    })
  }

  #finish(d: Download): void {
    if (d.done) return
    d.done = true
    for (const req of [...d.reqs.values()]) this.#cut(req)
    this.#forgetReqs(d)
    this.#seed[d.blob.index]!.parked.delete(d)
    const a = d.node
    if (--a.pending === 0) {
      a.doneAt = this.w.q.now
      this.#nodesDone++
    }
  }
}
