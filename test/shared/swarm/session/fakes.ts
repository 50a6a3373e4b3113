import { createHash } from 'node:crypto'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import type { ChunkAttestation } from '../../../../shared/chunks/index.ts'
import type { PeerKind } from '../../../../shared/swarm/scheduler/index.ts'
import { StallClocks } from '../../../../shared/swarm/scheduler/index.ts'
import {
  type ChunkAnswer,
  type ChunkCall,
  type ChunkFetcher,
  type ChunkVerifier,
  DownloadSession,
  type DownloadSessionInit,
  type HaveSink,
  type HolderSource,
  type PartialSink,
  type RejectReason,
  type SessionClock,
} from '../../../../shared/swarm/session/index.ts'

// In-memory fakes of a download session's collaborators, over virtual time: no libp2p, no disk, no wall clock.

export const CHUNK_BYTES = 1000

/** Virtual time: events run in time order, then in the order they were scheduled. */
export class FakeClock implements SessionClock {
  t = 0
  #seq = 0
  readonly #events: { at: number; seq: number; fn: () => void }[] = []

  now(): number {
    return this.t
  }

  after(ms: number, fn: () => void): void {
    this.#events.push({ at: this.t + ms, seq: this.#seq++, fn })
  }

  soon(fn: () => void): void {
    this.after(0, fn)
  }

  /** Runs events up to `untilMs` (or until `stop` says so). */
  run(untilMs: number, stop: () => boolean = () => false): void {
    for (;;) {
      if (stop()) return
      this.#events.sort((a, b) => a.at - b.at || a.seq - b.seq)
      const e = this.#events[0]
      if (e === undefined || e.at > untilMs) break
      this.#events.shift()
      this.t = e.at
      e.fn()
    }
    this.t = Math.max(this.t, untilMs)
  }
}

export function content(index: number): Uint8Array {
  return new Uint8Array(CHUNK_BYTES).fill(index + 1)
}

export function hash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * How a fake peer answers a chunk request: honestly; with corrupt bytes; never a byte (or one, then silence);
 * trickling a byte every `trickleMs` and never finishing; or busy.
 */
export type Behaviour =
  | { readonly kind: 'honest' }
  | { readonly kind: 'corrupt' }
  | { readonly kind: 'silent'; readonly firstByteMs?: number }
  | { readonly kind: 'trickle'; readonly everyMs: number; readonly doneAfterMs: number }

export interface FakePeer {
  readonly id: string
  readonly kind: PeerKind
  readonly have: readonly number[]
  readonly behaviour: Behaviour
  readonly latencyMs?: number
  /** Answers carry an attestation of this signer (the fake verifier trusts 'seeder'). */
  readonly signer?: string
  /** The site the peer says it is in (edge sites). */
  readonly site?: string
}

export interface Fetch {
  readonly peer: string
  readonly index: number
  readonly at: number
  abortedAt: number | undefined
}

export interface World {
  readonly clock: FakeClock
  readonly session: DownloadSession
  readonly written: Map<number, Uint8Array>
  readonly fetches: Fetch[]
  readonly rejected: { peer: string; index: number; reason: RejectReason }[]
  /** Edge sites: requests outside the node's site, with the candidates the session knew. */
  readonly outside: { peer: string; index: number; candidates: readonly string[] }[]
  readonly bans: Map<string, number>
  readonly discovered: number[]
  readonly mapChecks: number[]
  /** When the session polled the fetcher: once per scheduling pass, twice per tick. */
  readonly polls: number[]
  readonly controller: AbortController
  /** The signal the session gave its holders. */
  followSignal: AbortSignal | undefined
  /** How the session ended: undefined while it runs, then 'done' or the failure. */
  end: 'done' | Error | undefined
  endedAt: number | undefined
}

export interface WorldOptions {
  readonly chunkCount: number
  readonly peers: readonly FakePeer[]
  /** Hashes the verifier knows (a trusted map); without it every chunk must be attested. */
  readonly map?: boolean
  /** Without a map at first: a recheck finds it from this time on. */
  readonly mapFoundAtMs?: number
  readonly init?: Partial<DownloadSessionInit>
}

export function world(opts: WorldOptions): World {
  const clock = new FakeClock()
  const written = new Map<number, Uint8Array>()
  const fetches: Fetch[] = []
  const rejected: World['rejected'] = []
  const bans = new Map<string, number>()
  const discovered: number[] = []
  const mapChecks: number[] = []
  const polls: number[] = []
  let mapKnown = opts.map !== false && opts.mapFoundAtMs === undefined
  const controller = new AbortController()
  const byId = new Map(opts.peers.map((p) => [p.id, p]))

  const fetcher: ChunkFetcher = {
    poll: () => polls.push(clock.t),
    fetch(call: ChunkCall) {
      const peer = byId.get(call.peer)!
      const f: Fetch = { peer: call.peer, index: call.index, at: clock.t, abortedAt: undefined }
      fetches.push(f)
      const live = () => f.abortedAt === undefined
      const answer = (a: ChunkAnswer) => {
        if (live()) call.settle(a)
      }
      const lat = peer.latencyMs ?? 5
      const b = peer.behaviour
      if (!peer.have.includes(call.index)) clock.after(lat, () => answer({ kind: 'none' }))
      else if (b.kind === 'honest' || b.kind === 'corrupt') {
        clock.after(lat, () => live() && call.progress())
        clock.after(2 * lat, () => {
          const bytes = content(call.index)
          answer({
            kind: 'chunk',
            bytes: b.kind === 'corrupt' ? bytes.map((x) => x ^ 0xff) : bytes,
            attestation: peer.signer === undefined ? undefined : attestation(call.index, peer.signer),
          })
        })
      } else if (b.kind === 'silent') {
        if (b.firstByteMs !== undefined) clock.after(b.firstByteMs, () => live() && call.progress())
      } else {
        const trickle = () => {
          if (!live()) return
          if (clock.t - f.at >= b.doneAfterMs) return answer({ kind: 'chunk', bytes: content(call.index) })
          call.progress()
          clock.after(b.everyMs, trickle)
        }
        clock.after(b.everyMs, trickle)
      }
      return {
        abort() {
          if (f.abortedAt === undefined) f.abortedAt = clock.t
        },
      }
    },
  }

  const w: World = {
    clock,
    session: undefined as unknown as DownloadSession,
    written,
    fetches,
    rejected,
    outside: [],
    bans,
    discovered,
    mapChecks,
    polls,
    controller,
    followSignal: undefined,
    end: undefined,
    endedAt: undefined,
  }

  const holders: HolderSource = {
    follow(sink: HaveSink, signal: AbortSignal) {
      w.followSignal = signal
      for (const p of opts.peers) {
        clock.after(1, () => {
          if (!signal.aborted) sink.addPeer(p.id, p.kind, bits(opts.chunkCount, p.have), p.site)
        })
      }
    },
    discover() {
      discovered.push(clock.t)
    },
  }

  const verifier: ChunkVerifier = {
    fromMap: (index) => (mapKnown ? hash(content(index)) : undefined),
    recheckMap: () => {
      mapChecks.push(clock.t)
      if (opts.mapFoundAtMs !== undefined && clock.t >= opts.mapFoundAtMs) mapKnown = true
      return mapKnown
    },
    attested: (att) => (att as unknown as { signer: string }).signer === 'seeder',
    check(_index, chunk, bytes) {
      if (hash(bytes) !== chunk) throw new Error('chunk hash mismatch')
    },
  }

  const sink: PartialSink = {
    has: (index) => written.has(index),
    verified: () => [],
    write(index, bytes) {
      written.set(index, bytes)
    },
  }

  const session = new DownloadSession(
    {
      clock,
      fetcher,
      holders,
      verifier,
      sink,
      events: {
        rejected: (peer, index, reason) => rejected.push({ peer, index, reason }),
        outside: (peer, index, candidates) => w.outside.push({ peer, index, candidates }),
      },
    },
    {
      chunkCount: opts.chunkCount,
      chunkBytes: () => CHUNK_BYTES,
      stallTimeoutMs: 60_000,
      random: () => 0.5,
      stall: new StallClocks(),
      bans,
      signal: controller.signal,
      ...opts.init,
    },
  )
  ;(w as { session: DownloadSession }).session = session
  session.start((failure) => {
    w.end = failure ?? 'done'
    w.endedAt = clock.t
  })
  return w
}

/** A stand-in attestation: the fake verifier only looks at who signed it. */
export function attestation(index: number, signer: string): ChunkAttestation {
  return { chunk: hash(content(index)), signer } as unknown as ChunkAttestation
}

export function all(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
}

function bits(n: number, indexes: readonly number[]): Bitfield {
  const b = new Bitfield(n)
  for (const i of indexes) b.set(i)
  return b
}
