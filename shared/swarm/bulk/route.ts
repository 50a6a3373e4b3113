import { isPeerId, type PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Digest } from '../../oci/digest.ts'
import type { TokenBucket } from '../../rate/token-bucket.ts'
import { peerIdOf } from '../seeders.ts'
import { InvalidMessageError } from '../wire/errors.ts'
import type { BulkChunk, BulkClient, BulkTarget } from './client.ts'
import { BULK_RETRY_AFTER_MS, TICKET_EXPIRY_MARGIN_MS } from './constants.ts'
import { BulkTicketRejectedError } from './errors.ts'

/** A ticket as the chunk protocol hands it out, with where to use it. */
export interface BulkTicket extends BulkTarget {
  readonly ttlMs: number
}

export interface BulkRouteInit {
  readonly client: BulkClient
  /** Asks the peer for a ticket over libp2p; undefined when it serves no bulk path. Bounded by its own timeout. */
  readonly ticket: (peer: PeerId | Multiaddr, digest: Digest) => Promise<BulkTicket | undefined>
  /** After a failure that says nothing about the chunk (old peer, port closed, wrong identity): streams this long. */
  readonly retryAfterMs?: number
  readonly now?: () => number
}

interface CachedTicket {
  readonly promise: Promise<BulkTicket | undefined>
  expiresAt: number
}

const MAX_CACHED = 4096

/**
 * The requester's choice between the bulk path and the libp2p stream, per peer: a ticket per (peer, blob), reused
 * until shortly before it expires and asked for once however many requests want it; a peer whose bulk path failed
 * is left to the stream for a while. `getChunk` answers undefined whenever the stream should be used instead.
 */
export class BulkRoute {
  readonly #client: BulkClient
  readonly #ticket: BulkRouteInit['ticket']
  readonly #retryAfterMs: number
  readonly #now: () => number
  readonly #tickets = new Map<string, CachedTicket>()
  readonly #off = new Map<string, number>()
  #chunks = 0
  #fallbacks = 0

  constructor(init: BulkRouteInit) {
    this.#client = init.client
    this.#ticket = init.ticket
    this.#retryAfterMs = init.retryAfterMs ?? BULK_RETRY_AFTER_MS
    this.#now = init.now ?? Date.now
  }

  /** Chunks fetched over the bulk path, and requests that fell back to the stream after trying it. */
  get counts(): { readonly chunks: number; readonly fallbacks: number } {
    return { chunks: this.#chunks, fallbacks: this.#fallbacks }
  }

  /**
   * The chunk over the bulk path, or undefined when the stream should carry it. A malformed answer is the
   * peer's fault and throws (InvalidMessageError); an abort of `signal` (the request's deadline included)
   * rejects with its reason.
   */
  async getChunk(
    peer: PeerId | Multiaddr,
    digest: Digest,
    index: number,
    opts: { maxBytes: number; signal: AbortSignal; bucket?: TokenBucket; onProgress?: (received: number) => void },
  ): Promise<BulkChunk | undefined> {
    const { signal } = opts
    const id = peerKey(peer)
    const until = this.#off.get(id)
    if (until !== undefined) {
      if (until > this.#now()) return undefined
      this.#off.delete(id)
    }
    let target: BulkTicket | undefined
    try {
      target = await raced(this.#target(id, peer, digest), signal)
    } catch (err) {
      signal.throwIfAborted()
      this.#disable(id)
      return undefined
    }
    if (target === undefined) {
      this.#disable(id)
      return undefined
    }
    try {
      const res = await this.#client.getChunk(target, digest, index, opts)
      if (typeof res !== 'string') this.#chunks++
      return res
    } catch (err) {
      signal.throwIfAborted()
      if (err instanceof InvalidMessageError) throw err
      this.#tickets.delete(`${id}\n${digest}`)
      if (!(err instanceof BulkTicketRejectedError)) {
        this.#disable(id)
        this.#client.forget(target)
      }
      this.#fallbacks++
      return undefined
    }
  }

  #target(id: string, peer: PeerId | Multiaddr, digest: Digest): Promise<BulkTicket | undefined> {
    const key = `${id}\n${digest}`
    const cached = this.#tickets.get(key)
    if (cached !== undefined && cached.expiresAt > this.#now()) return cached.promise
    const entry: CachedTicket = {
      // Until it resolves it is the one every request for this (peer, blob) waits on.
      expiresAt: Number.POSITIVE_INFINITY,
      promise: this.#ticket(peer, digest).then(
        (t) => {
          if (t === undefined) this.#tickets.delete(key)
          else entry.expiresAt = this.#now() + t.ttlMs - Math.min(TICKET_EXPIRY_MARGIN_MS, t.ttlMs / 2)
          return t
        },
        (err: unknown) => {
          this.#tickets.delete(key)
          throw err
        },
      ),
    }
    this.#tickets.delete(key)
    this.#tickets.set(key, entry)
    if (this.#tickets.size > MAX_CACHED) this.#tickets.delete(this.#tickets.keys().next().value!)
    return entry.promise
  }

  #disable(id: string): void {
    this.#off.delete(id)
    this.#off.set(id, this.#now() + this.#retryAfterMs)
    if (this.#off.size > MAX_CACHED) this.#off.delete(this.#off.keys().next().value!)
  }
}

function peerKey(peer: PeerId | Multiaddr): string {
  if (isPeerId(peer)) return peer.toString()
  return peerIdOf(peer) ?? peer.toString()
}

/** `promise`, or the signal's reason as soon as it aborts (the promise itself is shared and runs on). */
function raced<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err instanceof Error ? err : new Error(String(err)))
      },
    )
  })
}
