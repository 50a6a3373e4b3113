import { randomBytes } from 'node:crypto'
import type { Digest } from '../../oci/digest.ts'
import { DEFAULT_MAX_TICKETS, DEFAULT_TICKET_TTL_MS, TOKEN_BYTES } from './constants.ts'

export interface BulkTicketsInit {
  readonly ttlMs?: number
  readonly maxTickets?: number
  readonly now?: () => number
  readonly random?: (bytes: number) => Uint8Array
}

export interface IssuedTicket {
  readonly token: string
  readonly ttlMs: number
}

export type TicketCheck = 'ok' | 'unknown' | 'expired' | 'wrong-peer' | 'wrong-digest'

interface Ticket {
  readonly peer: string
  readonly digest: Digest
  readonly expiresAt: number
}

/**
 * Tickets of the bulk data path, in memory only: a peer that asked over the authenticated libp2p channel gets a
 * random token bound to (its peer id, one blob digest) for a short while, and the HTTPS side honours it only for
 * that peer (as proven by its TLS client certificate) and that blob. One live ticket per (peer, blob): asking again
 * replaces it. Tickets are issued with a constant lifetime, so insertion order is expiry order.
 */
export class BulkTickets {
  readonly ttlMs: number
  readonly #max: number
  readonly #now: () => number
  readonly #random: (bytes: number) => Uint8Array
  readonly #byToken = new Map<string, Ticket>()
  readonly #byKey = new Map<string, string>()

  constructor(init: BulkTicketsInit = {}) {
    this.ttlMs = init.ttlMs ?? DEFAULT_TICKET_TTL_MS
    this.#max = init.maxTickets ?? DEFAULT_MAX_TICKETS
    this.#now = init.now ?? Date.now
    this.#random = init.random ?? ((n) => randomBytes(n))
    if (!Number.isSafeInteger(this.ttlMs) || this.ttlMs < 1) throw new RangeError(`ticket ttl ${this.ttlMs}`)
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) throw new RangeError(`max tickets ${this.#max}`)
  }

  get size(): number {
    return this.#byToken.size
  }

  issue(peer: string, digest: Digest): IssuedTicket {
    const now = this.#now()
    this.#purge(now)
    const key = `${peer}\n${digest}`
    const previous = this.#byKey.get(key)
    if (previous !== undefined) this.#byToken.delete(previous)
    while (this.#byToken.size >= this.#max) this.#drop(this.#byToken.keys().next().value!)
    const token = Buffer.from(this.#random(TOKEN_BYTES)).toString('base64url')
    this.#byToken.set(token, { peer, digest, expiresAt: now + this.ttlMs })
    this.#byKey.set(key, token)
    return { token, ttlMs: this.ttlMs }
  }

  /** Whether `peer` may read chunks of `digest` with `token` now. */
  check(token: string, peer: string, digest: Digest): TicketCheck {
    const t = this.#byToken.get(token)
    if (t === undefined) return 'unknown'
    if (this.#now() >= t.expiresAt) {
      this.#drop(token)
      return 'expired'
    }
    if (t.peer !== peer) return 'wrong-peer'
    if (t.digest !== digest) return 'wrong-digest'
    return 'ok'
  }

  clear(): void {
    this.#byToken.clear()
    this.#byKey.clear()
  }

  #purge(now: number): void {
    for (const [token, t] of this.#byToken) {
      if (t.expiresAt > now) break
      this.#drop(token)
    }
  }

  #drop(token: string): void {
    const t = this.#byToken.get(token)
    if (t === undefined) return
    this.#byToken.delete(token)
    const key = `${t.peer}\n${t.digest}`
    if (this.#byKey.get(key) === token) this.#byKey.delete(key)
  }
}
