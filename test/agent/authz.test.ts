import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { Authorizer, MAX_AUTH_GRANTS } from '../../agent/authz.ts'
import { OriginUnavailableError } from '../../agent/errors.ts'
import type { OriginPort } from '../../agent/origin-port.ts'
import type { OriginRequest, Upstream } from '../../shared/origin/index.ts'

const UP: Upstream = { registry: 'r.example', baseUrl: new URL('https://r.example/') }
const DIGEST = `sha256:${'a'.repeat(64)}`
const TTL_MS = 60_000
const STALE_MS = 24 * 3_600_000

/** An origin that answers 200 to every HEAD while `up`, and is unreachable otherwise. */
function fakeOrigin() {
  const state = { up: true, heads: 0 }
  const origin: OriginPort = {
    async request(_u: Upstream, _req: OriginRequest) {
      state.heads++
      if (!state.up) throw new Error('connect ECONNREFUSED')
      return { status: 200, headers: {}, body: Readable.from([]) }
    },
  }
  return { origin, state }
}

function authorizer(opts: { maxGrants?: number } = {}) {
  // Not 0: lru-cache takes a start time of 0 for "no TTL".
  const T0 = 1_000_000
  const clock = { now: T0, t0: T0 }
  const { origin, state } = fakeOrigin()
  const authz = new Authorizer({
    origin,
    ttlMs: TTL_MS,
    staleTtlMs: STALE_MS,
    isPublic: () => false,
    now: () => clock.now,
    ...opts,
  })
  const ask = (token: string) => authz.authorize(UP, 'team/app', 'blobs', DIGEST, `Bearer ${token}`)
  return { authz, clock, state, ask }
}

describe('Authorizer cache bound', () => {
  it('holds no more than its cap after 10,000 distinct rotating client tokens', async () => {
    const { authz, ask } = authorizer()
    for (let i = 0; i < 10_000; i++) await ask(`rotating-${i}`)
    expect(authz.size.grants).toBe(10_000)
    expect(10_000).toBeLessThanOrEqual(MAX_AUTH_GRANTS)

    const small = authorizer({ maxGrants: 1_000 })
    for (let i = 0; i < 10_000; i++) await small.ask(`rotating-${i}`)
    expect(small.authz.size.grants).toBe(1_000)
    // One digest in one repository: the membership cache holds one entry, whatever the clients.
    expect(small.authz.size.members).toBe(1)
  })

  it('past the cap the least recently used grant goes first: asked again, or refused while the origin is down', async () => {
    const { clock, state, ask } = authorizer({ maxGrants: 1_000 })
    for (let i = 0; i < 10_000; i++) await ask(`rotating-${i}`)
    // Past --auth-ttl every ask goes to the origin; with the origin down, a cached grant is what decides.
    clock.now += TTL_MS + 1
    state.up = false
    const heads = state.heads
    // The newest grants are kept: within --stale-auth-ttl they still count with the origin down.
    await expect(ask('rotating-9999')).resolves.toBeUndefined()
    await expect(ask('rotating-9000')).resolves.toBeUndefined()
    // The oldest were dropped: nothing vouches for them while the origin is down.
    await expect(ask('rotating-0')).rejects.toBeInstanceOf(OriginUnavailableError)
    await expect(ask('rotating-8999')).rejects.toBeInstanceOf(OriginUnavailableError)
    state.up = true
    await expect(ask('rotating-0')).resolves.toBeUndefined()
    expect(state.heads).toBe(heads + 5)
  })

  it('keeps a grant for all of --stale-auth-ttl while the origin is down, and drops it after', async () => {
    const { authz, clock, state, ask } = authorizer()
    await ask('steady')
    for (let i = 0; i < 1_000; i++) await ask(`other-${i}`)
    state.up = false
    clock.now = clock.t0 + STALE_MS
    await expect(ask('steady')).resolves.toBeUndefined()
    clock.now = clock.t0 + STALE_MS + 1
    await expect(ask('steady')).rejects.toBeInstanceOf(OriginUnavailableError)
    // Expired entries leave the cache as they are met: past the window, none of them is kept.
    for (let i = 0; i < 1_000; i++) await expect(ask(`other-${i}`)).rejects.toBeInstanceOf(OriginUnavailableError)
    expect(authz.size.grants).toBe(0)
  })
})
