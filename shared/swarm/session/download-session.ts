import type { Bitfield, ChunkAttestation } from '../../chunks/index.ts'
import { DEFAULT_BUSY_BACKOFF_MS, DownloadScheduler, type DownloadStallClock } from '../scheduler/index.ts'
import type { ChunkOutcome, OfferReply, PeerKind } from '../scheduler/index.ts'
import {
  BUDGET_QUIET_MS,
  CHUNK_IDLE_MS,
  HARD_TIMEOUT_STALL_DIVISOR,
  MAP_RECHECK_MS,
  MAP_RECHECK_TIMEOUT_MS,
  MIN_HARD_TIMEOUT_MS,
  MIN_REQUEST_TIMEOUT_MS,
  REDISCOVER_MS,
  REQUEST_TIMEOUT_STALL_DIVISOR,
  TICK_MS,
} from './constants.ts'
import { sameSite, SiteElection } from '../sites.ts'
import { SessionError } from './errors.ts'
import { mapMaybe, settle } from './maybe.ts'
import type {
  ChunkAnswer,
  ChunkCall,
  ChunkFetch,
  DownloadSessionComponents,
  DownloadSessionInit,
  HaveSink,
  MaybePromise,
  SessionCounts,
} from './types.ts'

type Proof = { readonly chunk: string; readonly attestation?: ChunkAttestation | undefined }

/** One request of the session: in flight until answered, then proven and written, then settled. */
interface Request {
  readonly peer: string
  readonly index: number
  readonly key: string
  readonly kind: PeerKind
  lastByteAt: number
  fetch: ChunkFetch | undefined
  /** The answer came: the idle window no longer applies, a later abort only skips the scheduler's bookkeeping. */
  answered: boolean
  /** Dropped by the session: whatever happens next, the scheduler has already been told. */
  aborted: boolean
  /** Given back to the node's ReceiveBudget. */
  released: boolean
}

/**
 * Fills one blob from the swarm: the loop around the pure DownloadScheduler. It follows holders, asks the
 * scheduler who gets asked for what on every answer and every tick, drops requests that go quiet, proves every
 * chunk against the trusted map or a trusted seeder's attestation before it is written, bans peers that lie, and
 * gives up when the node's stall clock says the swarm has stopped delivering. Time, the network and the disk come
 * in through small interfaces, so the agent drives it over libp2p and the simulator over virtual time.
 */
export class DownloadSession implements HaveSink {
  readonly #c: DownloadSessionComponents
  readonly #i: DownloadSessionInit
  readonly #tickMs: number
  readonly #ticksPerDiscovery: number
  readonly #idleMs: number
  readonly #busyBackoffMs: number
  readonly #ac = new AbortController()
  readonly #inflight = new Map<string, Request>()
  readonly #kinds = new Map<string, PeerKind>()
  /** Chunks being written, with the requests (endgame copies) waiting for that write. */
  readonly #writes = new Map<number, ((ok: boolean) => void)[]>()
  #sched: DownloadScheduler | undefined
  /** Edge sites: the site election for this blob, and the peers that said they are in this node's site. */
  #site: SiteElection | undefined
  readonly #local = new Set<string>()
  #clock: DownloadStallClock | undefined
  #onEnd: ((failure: Error | undefined) => void) | undefined
  #ticks = 0
  #pokeQueued = false
  #provided = false
  #lastMapCheck = Number.NEGATIVE_INFINITY
  #ended = false
  #failure: Error | undefined
  readonly counts: SessionCounts = {
    requests: 0,
    offers: 0,
    busy: 0,
    failed: 0,
    bad: 0,
    timedOut: 0,
    cancelled: 0,
    idle: 0,
    siteHeld: 0,
  }

  constructor(components: DownloadSessionComponents, init: DownloadSessionInit) {
    this.#c = components
    this.#i = init
    this.#tickMs = init.tickMs ?? TICK_MS
    this.#idleMs = init.chunkIdleMs ?? CHUNK_IDLE_MS
    this.#busyBackoffMs = init.scheduler?.busyBackoffMs ?? DEFAULT_BUSY_BACKOFF_MS
    if (!(this.#tickMs > 0) || !(this.#idleMs > 0) || !(init.stallTimeoutMs > 0)) {
      throw new SessionError('SESSION_INVALID_OPTIONS', 'tick, idle window and stall timeout must be positive')
    }
    this.#ticksPerDiscovery = Math.max(1, Math.round((init.rediscoverMs ?? REDISCOVER_MS) / this.#tickMs))
  }

  /** Whether the session has ended (complete, stalled or aborted). */
  get ended(): boolean {
    return this.#ended
  }

  /** Runs the session; resolves once every chunk is proven and written, rejects when it stalls or is aborted. */
  run(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.start((failure) => (failure === undefined ? resolve() : reject(failure))),
    )
  }

  /** Starts the session; `onEnd` is called once, synchronously from whatever ended it. */
  start(onEnd: (failure: Error | undefined) => void): void {
    if (this.#onEnd !== undefined) throw new SessionError('SESSION_INVALID_OPTIONS', 'a session runs once')
    this.#onEnd = onEnd
    const { clock, holders, sink } = this.#c
    const init = this.#i
    const now = clock.now()
    if (init.bans !== undefined) for (const [peer, until] of init.bans) if (until <= now) init.bans.delete(peer)
    const site =
      init.site === undefined
        ? undefined
        : new SiteElection({
            self: init.site.self,
            blob: init.site.blob,
            takeoverMs: init.site.takeoverMs ?? init.stallTimeoutMs,
            startedAt: now,
            ...(init.site.joinMs === undefined ? {} : { joinMs: init.site.joinMs }),
          })
    this.#site = site
    const sched = new DownloadScheduler({
      ...(site === undefined ? {} : { site }),
      ...init.scheduler,
      ...(init.bans === undefined ? {} : { bans: init.bans }),
      chunkCount: init.chunkCount,
      chunkBytes: init.chunkBytes,
      requestTimeoutMs: Math.max(
        MIN_REQUEST_TIMEOUT_MS,
        Math.floor(init.stallTimeoutMs / REQUEST_TIMEOUT_STALL_DIVISOR),
      ),
      hardTimeoutMs: Math.max(MIN_HARD_TIMEOUT_MS, Math.floor(init.stallTimeoutMs / HARD_TIMEOUT_STALL_DIVISOR)),
      random: init.random,
    })
    this.#sched = sched
    for (const i of sink.verified()) sched.markHave(i, now)
    if (init.signal.aborted) return this.#end(init.signal.reason as Error)
    if (sched.done) return this.#end(undefined)
    init.signal.addEventListener('abort', this.#onAbort, { once: true })
    this.#clock = init.stall.start(now)
    holders.follow(this, this.#ac.signal)
    this.#tick()
  }

  // ---- HaveSink: holders' bitfields ----

  addPeer(peer: string, kind: PeerKind, have: Bitfield, site?: string): void {
    const sched = this.#sched
    if (this.#ended || sched === undefined) return
    this.#kinds.set(peer, kind)
    const local = this.#site !== undefined && kind === 'peer' && sameSite(this.#i.site?.name, site)
    if (local) {
      this.#local.add(peer)
      this.#site!.join(peer, this.#c.clock.now())
      for (const i of have.indexes()) this.#site!.arrived(i)
    } else if (this.#local.delete(peer)) this.#site?.leave(peer)
    sched.addPeer(peer, kind, have, local)
    this.#poke()
  }

  /**
   * A peer asked this node for the blob's `have`, saying it is in `site` (edge sites): when that is this node's site,
   * it is a candidate in the site election from now on (SiteElection.heard), before this node tracks it.
   */
  heardFrom(peer: string, site: string | undefined): void {
    if (this.#ended || this.#site === undefined || !sameSite(this.#i.site?.name, site)) return
    this.#site.heard(peer, this.#c.clock.now())
  }

  peerHas(peer: string, index: number): void {
    const sched = this.#sched
    if (this.#ended || sched === undefined) return
    // Only a session in a site has local peers.
    if (this.#site !== undefined && this.#local.has(peer)) {
      this.#site.progress(peer, this.#c.clock.now())
      this.#site.arrived(index)
    }
    sched.peerHas(peer, index)
    this.#poke()
  }

  removePeer(peer: string): void {
    const sched = this.#sched
    if (this.#ended || sched === undefined) return
    if (this.#local.delete(peer)) this.#site?.leave(peer)
    sched.removePeer(peer, this.#c.clock.now())
    this.#poke()
  }

  /**
   * `peer` offers its chunks (it picks who gets its next free upload slot): it is no longer asked for any, its
   * offers come in through `offered`.
   */
  offersFrom(peer: string): void {
    if (this.#ended) return
    this.#sched?.setOffers(peer)
  }

  /**
   * `peer` offers chunk `index`: 'have' / 'coming' (held, or asked of someone else, and nothing else `peer` holds is
   * wanted) or 'full' (no room in this download or the node's ReceiveBudget) to decline; 'accept' when taken, with
   * the chunk taken (the offered one, or the rarest other one `peer` holds when that one is not wanted), and then
   * `fetch` is called at once with the request's call, exactly as
   * the fetcher is for a request this node made: the chunk that comes is proven and written the same way.
   */
  offered(peer: string, index: number, fetch: (call: ChunkCall) => ChunkFetch): OfferReply {
    const sched = this.#sched
    if (this.#ended || sched === undefined) return { answer: 'have', index }
    const budget = this.#i.budget
    const room = budget === undefined ? undefined : budget.room()
    const reply = sched.accept(peer, index, this.#c.clock.now(), room)
    if (reply.answer !== 'accept') return reply
    if (!this.#kinds.has(peer)) this.#kinds.set(peer, 'peer')
    this.counts.offers++
    this.#start(peer, reply.index, fetch)
    return reply
  }

  /** Wakes the loop for a scheduling pass (coalesced with any other wake-up under way). */
  wake(): void {
    this.#poke()
  }

  // ---- the loop ----

  readonly #onAbort = (): void => {
    this.#end(this.#i.signal.reason as Error)
  }

  #tick(): void {
    if (this.#ended) return
    const { clock, holders, fetcher } = this.#c
    const now = clock.now()
    if (this.#ticks++ % this.#ticksPerDiscovery === 0) holders.discover(this.#ac.signal)
    fetcher.poll?.()
    const stall = this.#clock!
    const overdueMs = stall.stalledMs(now) - this.#i.stallTimeoutMs
    // Within a site one member at a time leaves for the origin; the others keep their roles and wait for it.
    const held = overdueMs > 0 && this.#site !== undefined && !this.#site.mayFallBack(overdueMs, now)
    if (held) this.counts.siteHeld++
    if (overdueMs > 0 && !held) {
      const sched = this.#sched!
      const peers = sched
        .peerStats()
        .map((p) => `${p.id.slice(-6)}:${p.kind}:inflight=${p.inflight}:banned=${p.banned}:backoff=${p.backoff}`)
      return this.#end(
        new SessionError(
          'SESSION_STALLED',
          `no chunk byte for ${stall.sinceByte(now)} ms, no verified chunk for ${stall.sinceVerified(now)} ms (missing ${sched.missing}, unavailable ${sched.unavailable(now)}, peers ${peers.join(' ')})`,
        ),
      )
    }
    // The idle window is checked per tick, not per pass: a tick is frequent enough for a 10 s window, and a pass
    // (on every answer) stays cheap.
    for (const r of this.#inflight.values()) {
      if (!r.released && now - r.lastByteAt > BUDGET_QUIET_MS) this.#release(r)
      if (r.answered || now - r.lastByteAt <= this.#idleMs) continue
      this.counts.idle++
      // Told to the scheduler as a failure first: a dropped request's answer no longer counts.
      this.#settle(r, 'failed')
      this.#drop(r)
    }
    if (this.#ended) return
    this.#pass(now)
    clock.after(this.#tickMs, () => this.#tick())
  }

  /** Wakes the loop for one scheduling pass, once however many things changed meanwhile. */
  #poke(): void {
    if (this.#pokeQueued || this.#ended) return
    this.#pokeQueued = true
    this.#c.clock.soon(this.#poked)
  }

  /** The pass a poke queued (one function for every poke: at scale a pass follows most events). */
  readonly #poked = (): void => {
    this.#pokeQueued = false
    if (!this.#ended) this.#pass(this.#c.clock.now())
  }

  #pass(now: number): void {
    const sched = this.#sched!
    this.#c.fetcher.poll?.()
    for (const t of sched.tick(now).timedOut) {
      this.counts.timedOut++
      this.#abort(t.peer, t.index)
    }
    const budget = this.#i.budget
    const room = budget === undefined ? undefined : budget.room(this.#wake)
    for (const r of sched.next(now, room)) this.#request(r.peer, r.index)
  }

  /** The node's ReceiveBudget has room again, or a peer's `busy` pause ended. */
  readonly #wake = (): void => this.#poke()

  #request(peer: string, index: number): void {
    this.counts.requests++
    this.#start(peer, index, (call) => this.#c.fetcher.fetch(call))
  }

  /** A chunk in flight from `peer`, asked for or offered: `fetch` puts it on the wire. */
  #start(peer: string, index: number, fetch: (call: ChunkCall) => ChunkFetch): void {
    this.#i.budget?.take()
    const key = `${peer}/${index}`
    const r: Request = {
      peer,
      index,
      key,
      kind: this.#kinds.get(peer) ?? 'peer',
      lastByteAt: this.#c.clock.now(),
      fetch: undefined,
      answered: false,
      aborted: false,
      released: false,
    }
    this.#inflight.set(key, r)
    const call: ChunkCall = {
      peer,
      index,
      maxBytes: this.#i.chunkBytes(index),
      progress: () => this.#progress(r),
      settle: (answer) => this.#answer(r, answer),
    }
    const site = this.#site
    if (site !== undefined && !this.#local.has(peer)) this.#c.events?.outside?.(peer, index, site.candidates(index))
    r.fetch = fetch(call)
  }

  #progress(r: Request): void {
    if (r.aborted || this.#ended) return
    const now = this.#c.clock.now()
    r.lastByteAt = now
    this.#clock!.byte(now)
    this.#sched!.onProgress(r.peer, now)
  }

  /** The scheduler moved this request elsewhere, or cancelled an endgame copy. */
  #abort(peer: string, index: number): void {
    const r = this.#inflight.get(`${peer}/${index}`)
    if (r !== undefined) this.#drop(r)
  }

  #drop(r: Request): void {
    this.#release(r)
    r.aborted = true
    r.fetch?.abort()
  }

  #answer(r: Request, answer: ChunkAnswer): void {
    if (r.answered || r.aborted || this.#ended) return
    r.answered = true
    const events = this.#c.events
    switch (answer.kind) {
      case 'busy':
        return this.#settle(r, 'busy')
      case 'none':
        return this.#settle(r, 'failed')
      case 'failed':
        events?.failed?.(r.peer, r.index, answer.error)
        return this.#settle(r, 'failed')
      case 'malformed':
        events?.rejected?.(r.peer, r.index, 'malformed', answer.error)
        return this.#settle(r, 'bad')
      case 'chunk':
        return settle(
          this.#prove(r.index, answer.attestation),
          (proof) => this.#proven(r, answer.bytes, proof),
          (err) => this.#failed(r, err),
        )
    }
  }

  /**
   * The proof a chunk must match: the trusted map's entry, or a trusted seeder's attestation. `'forged'` when the
   * peer sent an attestation that does not verify; undefined when there is nothing to check against yet.
   */
  #prove(index: number, attestation: ChunkAttestation | undefined): MaybePromise<Proof | 'forged' | undefined> {
    const { verifier, clock } = this.#c
    const fromMap = verifier.fromMap(index)
    if (fromMap !== undefined) return { chunk: fromMap }
    if (attestation === undefined) {
      // A cold blob the seeder has finished meanwhile: its signed map now proves every chunk.
      const now = clock.now()
      if (now - this.#lastMapCheck < MAP_RECHECK_MS) return undefined
      this.#lastMapCheck = now
      return mapMaybe(verifier.recheckMap({ signal: this.#ac.signal, timeoutMs: MAP_RECHECK_TIMEOUT_MS }), (found) => {
        const chunk = found ? verifier.fromMap(index) : undefined
        return chunk === undefined ? undefined : { chunk }
      })
    }
    // Not signed by a trusted seeder, or not for this chunk of this blob: a proof that proves nothing is a lie.
    return mapMaybe(verifier.attested(attestation, index, this.#ac.signal), (ok) =>
      ok ? { chunk: attestation.chunk, attestation } : 'forged',
    )
  }

  #proven(r: Request, bytes: Uint8Array, proof: Proof | 'forged' | undefined): void {
    const events = this.#c.events
    if (proof === undefined) {
      // Nothing to check it against (yet): not a lie, but not usable either.
      events?.rejected?.(r.peer, r.index, 'unproven')
      return this.#settle(r, 'failed')
    }
    if (proof === 'forged') {
      events?.rejected?.(r.peer, r.index, 'forged')
      return this.#settle(r, 'bad')
    }
    try {
      this.#c.verifier.check(r.index, proof.chunk, bytes)
    } catch (err) {
      events?.rejected?.(r.peer, r.index, 'hash', err as Error)
      return this.#settle(r, 'bad')
    }
    this.#write(r, bytes, proof.attestation)
  }

  /**
   * Endgame copies of one chunk may both arrive: only the first is written and counted, and the second waits for
   * that write, so the scheduler never counts a chunk that is not on disk yet.
   */
  #write(r: Request, bytes: Uint8Array, attestation: ChunkAttestation | undefined): void {
    const { sink, events, clock } = this.#c
    const waiting = this.#writes.get(r.index)
    if (waiting !== undefined) {
      waiting.push((ok) => (ok ? this.#settle(r, 'ok') : this.#failed(r, new Error('write failed'))))
      return
    }
    if (sink.has(r.index)) return this.#settle(r, 'ok')
    const written = (): void => {
      const waiters = this.#writes.get(r.index)
      this.#writes.delete(r.index)
      this.#clock!.verified(clock.now())
      this.#site?.progress(this.#i.site!.self, clock.now())
      this.#site?.arrived(r.index)
      if (!this.#provided) {
        this.#provided = true
        events?.firstChunk?.()
      }
      this.#settle(r, 'ok')
      for (const w of waiters ?? []) w(true)
      this.#maybeFinish()
    }
    // Counted as it goes to the sink: a client following the blob may be sent the bytes during the write (a lent
    // chunk), and what a node was sent from the swarm must never read less than what its clients already got.
    events?.received?.(r.peer, r.kind, r.index, bytes.byteLength)
    const pending = sink.write(r.index, bytes, attestation)
    if (!(pending instanceof Promise)) return written()
    this.#writes.set(r.index, [])
    pending.then(written, (err: unknown) => {
      const waiters = this.#writes.get(r.index)
      this.#writes.delete(r.index)
      this.#failed(r, err)
      for (const w of waiters ?? []) w(false)
      this.#maybeFinish()
    })
  }

  #failed(r: Request, err: unknown): void {
    this.#c.events?.failed?.(r.peer, r.index, err as Error)
    this.#settle(r, 'failed')
  }

  /** Tells the scheduler how a request ended, unless the session dropped it already. */
  #settle(r: Request, outcome: ChunkOutcome): void {
    this.#release(r)
    if (this.#inflight.get(r.key) === r) this.#inflight.delete(r.key)
    if (r.aborted || this.#ended) return this.#poke()
    if (outcome === 'busy') this.counts.busy++
    else if (outcome === 'failed') this.counts.failed++
    else if (outcome === 'bad') this.counts.bad++
    const sched = this.#sched!
    const { cancel } = sched.onChunk(r.peer, r.index, this.#c.clock.now(), outcome)
    for (const c of cancel) {
      this.counts.cancelled++
      this.#abort(c.peer, c.index)
    }
    // A busy peer's backoff ends before the next tick may come.
    if (outcome === 'busy') this.#c.clock.after(this.#busyBackoffMs, this.#wake)
    if (sched.done) this.#end(undefined)
    else this.#poke()
  }

  /** The request no longer counts against the node's budget (once, however it ended). */
  #release(r: Request): void {
    if (r.released) return
    r.released = true
    this.#i.budget?.give()
  }

  #end(failure: Error | undefined): void {
    if (this.#ended) return
    this.#ended = true
    this.#failure = failure
    this.#i.signal.removeEventListener('abort', this.#onAbort)
    this.#ac.abort()
    for (const r of this.#inflight.values()) this.#drop(r)
    this.#inflight.clear()
    if (failure instanceof SessionError || failure === undefined) this.#maybeFinish()
    else this.#finish()
  }

  /** A stalled session still lets its writes land before it reports, as a partial they touch is then abandoned. */
  #maybeFinish(): void {
    if (this.#ended && this.#writes.size === 0) this.#finish()
  }

  #finish(): void {
    const onEnd = this.#onEnd
    this.#onEnd = () => {}
    onEnd?.(this.#failure)
  }
}
