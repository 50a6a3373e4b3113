import { describe, expect, it } from 'vitest'
import type { Digest } from '../../../../shared/oci/digest.ts'
import { BulkTickets, defaultBulkListen } from '../../../../shared/swarm/bulk/index.ts'
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
} from '../../../../shared/swarm/protocol/index.ts'
import { InvalidMessageError } from '../../../../shared/swarm/protocol/index.ts'

const A = `sha256:${'a'.repeat(64)}` as Digest
const B = `sha256:${'b'.repeat(64)}` as Digest

function book(opts: { ttlMs?: number; maxTickets?: number } = {}) {
  const clock = { now: 1_000 }
  const tickets = new BulkTickets({ ...opts, now: () => clock.now })
  return { clock, tickets }
}

describe('BulkTickets', () => {
  it('honours a ticket for the peer and blob it was issued for, until it expires', () => {
    const { clock, tickets } = book({ ttlMs: 100 })
    const { token, ttlMs } = tickets.issue('peerA', A)
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(ttlMs).toBe(100)
    expect(tickets.check(token, 'peerA', A)).toBe('ok')
    clock.now += 99
    expect(tickets.check(token, 'peerA', A)).toBe('ok')
    clock.now += 1
    expect(tickets.check(token, 'peerA', A)).toBe('expired')
    // Forgotten once seen expired.
    expect(tickets.check(token, 'peerA', A)).toBe('unknown')
  })

  it('refuses a ticket presented by another peer or for another blob', () => {
    const { tickets } = book()
    const { token } = tickets.issue('peerA', A)
    expect(tickets.check(token, 'peerB', A)).toBe('wrong-peer')
    expect(tickets.check(token, 'peerA', B)).toBe('wrong-digest')
    expect(tickets.check('x'.repeat(43), 'peerA', A)).toBe('unknown')
  })

  it('keeps one ticket per (peer, blob): asking again replaces it', () => {
    const { tickets } = book()
    const first = tickets.issue('peerA', A).token
    const second = tickets.issue('peerA', A).token
    expect(second).not.toBe(first)
    expect(tickets.check(first, 'peerA', A)).toBe('unknown')
    expect(tickets.check(second, 'peerA', A)).toBe('ok')
    tickets.issue('peerA', B)
    tickets.issue('peerB', A)
    expect(tickets.size).toBe(3)
  })

  it('holds at most maxTickets, dropping the oldest, and purges expired ones as it issues', () => {
    const { clock, tickets } = book({ ttlMs: 50, maxTickets: 2 })
    const t1 = tickets.issue('p1', A).token
    const t2 = tickets.issue('p2', A).token
    const t3 = tickets.issue('p3', A).token
    expect(tickets.check(t1, 'p1', A)).toBe('unknown')
    expect(tickets.check(t2, 'p2', A)).toBe('ok')
    expect(tickets.check(t3, 'p3', A)).toBe('ok')
    clock.now += 50
    tickets.issue('p4', A)
    expect(tickets.size).toBe(1)
  })
})

describe('bulk messages', () => {
  it('round-trips a ticket request and answer', () => {
    expect(decodeRequest(encodeRequest({ t: 'bulk', digest: A }))).toEqual({ t: 'bulk', digest: A })
    const res = { t: 'bulk', port: 4433, token: 'A'.repeat(43), ttlMs: 60_000 } as const
    expect(decodeResponse(encodeResponse(res))).toEqual(res)
  })

  it.each([
    ['port 0', { port: 0 }],
    ['port 70000', { port: 70_000 }],
    ['a short token', { token: 'abc' }],
    ['a token with other characters', { token: `${'A'.repeat(42)}/` }],
    ['a lifetime of an hour', { ttlMs: 3_600_000 }],
    ['no lifetime', { ttlMs: 0 }],
  ])('refuses an answer with %s', (_, patch) => {
    const bytes = new TextEncoder().encode(
      JSON.stringify({ t: 'bulk', port: 4433, token: 'A'.repeat(43), ttlMs: 60_000, ...patch }),
    )
    expect(() => decodeResponse(bytes)).toThrow(InvalidMessageError)
  })
})

describe('defaultBulkListen', () => {
  it('listens next to the first p2p listen address, on any port', () => {
    expect(defaultBulkListen(['/ip4/10.1.2.3/tcp/4001', '/ip6/::/tcp/4001'])).toEqual({ host: '10.1.2.3', port: 0 })
    expect(defaultBulkListen(['/ip6/::1/tcp/4001'])).toEqual({ host: '::1', port: 0 })
    expect(defaultBulkListen(['/dns4/node.local/tcp/4001'])).toEqual({ host: '0.0.0.0', port: 0 })
    expect(defaultBulkListen([])).toBeUndefined()
  })
})
