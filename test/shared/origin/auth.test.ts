import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { type Credential, OriginClient, type OriginClientOptions } from '../../../shared/origin/index.ts'
import { ERROR_BODY, FakeRegistry, type FakeRegistryOptions, text } from './fake-registry.ts'

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
const USERS = { alice: 'alice-pw', bob: 'bob-pw' }

/** Stops what a test started (servers close, clients stop). */
const open: (() => Promise<unknown>)[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((stop) => stop()))
})

async function registry(opts: FakeRegistryOptions): Promise<FakeRegistry> {
  const r = await new FakeRegistry(opts).start()
  open.push(() => r.stop())
  return r
}

function client(r: FakeRegistry, opts: OriginClientOptions & { creds?: Credential } = {}): OriginClient {
  const credentials = opts.creds === undefined ? undefined : new Map([[r.upstream.registry, opts.creds]])
  const c = new OriginClient({ retry: { attempts: 1 }, ...opts, ...(credentials ? { credentials } : {}) })
  open.push(() => c.stop())
  return c
}

async function get(c: OriginClient, r: FakeRegistry, path: string, clientAuthorization?: string) {
  const res = await c.request(r.upstream, {
    method: 'GET',
    path,
    ...(clientAuthorization === undefined ? {} : { clientAuthorization }),
  })
  return { status: res.status, headers: res.headers, body: await text(res.body) }
}

describe('OriginClient bearer auth', () => {
  it('gets an anonymous token for a public repository and reuses it', async () => {
    const r = await registry({ auth: 'bearer', publicRepos: ['library/alpine'] })
    const c = client(r)
    const first = await get(c, r, 'library/alpine/manifests/latest')
    expect(first.status).toBe(200)
    expect(JSON.parse(first.body)).toEqual({ repo: 'library/alpine', ref: 'latest' })
    expect(r.tokenRequests).toHaveLength(1)
    const tr = r.tokenRequests[0]!
    expect(tr.authorization).toBeUndefined()
    const q = new URL(tr.url, r.url).searchParams
    expect(q.get('service')).toBe('fake')
    expect(q.getAll('scope')).toEqual(['repository:library/alpine:pull'])
    expect(r.seen.map((s) => s.authorization)).toEqual([undefined, 'Bearer tk-1-anon'])

    // Same scope: the cached token goes out with the first request, no 401 round trip.
    expect((await get(c, r, 'library/alpine/blobs/sha256:aa')).status).toBe(200)
    expect(r.tokenRequests).toHaveLength(1)
    expect(r.seen.slice(2).map((s) => s.authorization)).toEqual(['Bearer tk-1-anon'])
  })

  it('asks the token server proactively once it knows the realm (new scope, no 401 first)', async () => {
    const r = await registry({ auth: 'bearer', publicRepos: ['library/alpine', 'library/busybox'] })
    const c = client(r)
    await get(c, r, 'library/alpine/manifests/latest')
    r.seen.length = 0
    expect((await get(c, r, 'library/busybox/manifests/1')).status).toBe(200)
    expect(r.seen.map((s) => s.authorization)).toEqual(['Bearer tk-2-anon'])
    expect(new URL(r.tokenRequests[1]!.url, r.url).searchParams.getAll('scope')).toEqual([
      'repository:library/busybox:pull',
    ])
  })

  it('trades a configured Basic credential for a token (the password never reaches the registry)', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const c = client(r, { creds: { kind: 'basic', username: 'alice', password: 'alice-pw' } })
    expect((await get(c, r, 'team/app/manifests/v1')).status).toBe(200)
    expect(r.tokenRequests.map((t) => t.authorization)).toEqual([basic('alice', 'alice-pw')])
    expect(r.seen.map((s) => s.authorization)).toEqual([undefined, 'Bearer tk-1-alice'])
  })

  it('sends a configured bearer credential to the token server as is', async () => {
    const r = await registry({ auth: 'bearer', refreshTokens: { 'refresh-1': 'alice' } })
    const c = client(r, { creds: { kind: 'bearer', token: 'refresh-1' } })
    expect((await get(c, r, 'team/app/manifests/v1')).status).toBe(200)
    expect(r.tokenRequests.map((t) => t.authorization)).toEqual(['Bearer refresh-1'])
    expect(r.seen.at(-1)!.authorization).toBe('Bearer tk-1-alice')
  })

  it('reads access_token when the server sends no token field', async () => {
    const r = await registry({ auth: 'bearer', publicRepos: ['a/b'], tokenField: 'access_token' })
    expect((await get(client(r), r, 'a/b/manifests/x')).status).toBe(200)
  })

  it('shares one token fetch among concurrent requests for the same scope', async () => {
    const r = await registry({ auth: 'bearer', publicRepos: ['a/b'] })
    const c = client(r)
    const all = await Promise.all([1, 2, 3, 4, 5].map((i) => get(c, r, `a/b/blobs/sha256:${i}`)))
    expect(all.map((x) => x.status)).toEqual([200, 200, 200, 200, 200])
    expect(r.tokenRequests).toHaveLength(1)
  })

  it('refreshes a token when its expires_in (less the margin) has passed', async () => {
    const r = await registry({ auth: 'bearer', publicRepos: ['a/b'], expiresIn: 120 })
    let now = 1_000_000
    const c = client(r, { now: () => now })
    await get(c, r, 'a/b/manifests/1')
    now += 100_000 // 100 s of 120: still fresh
    await get(c, r, 'a/b/manifests/2')
    expect(r.tokenRequests).toHaveLength(1)
    now += 11_000 // 111 s: inside the 10 s safety margin
    await get(c, r, 'a/b/manifests/3')
    expect(r.tokenRequests).toHaveLength(2)
    expect(r.seen.at(-1)!.authorization).toBe('Bearer tk-2-anon')
  })

  it('assumes 60 s when the token server gives no expires_in', async () => {
    const r = await registry({ auth: 'bearer', publicRepos: ['a/b'] })
    let now = 0
    const c = client(r, { now: () => now })
    await get(c, r, 'a/b/manifests/1')
    now = 49_000
    await get(c, r, 'a/b/manifests/1')
    expect(r.tokenRequests).toHaveLength(1)
    now = 51_000
    await get(c, r, 'a/b/manifests/1')
    expect(r.tokenRequests).toHaveLength(2)
  })

  it('replaces a cached token the registry rejects, once', async () => {
    const r = await registry({ auth: 'bearer', publicRepos: ['a/b'], expiresIn: 3600 })
    const c = client(r)
    await get(c, r, 'a/b/manifests/1')
    r.revokeAll()
    r.seen.length = 0
    expect((await get(c, r, 'a/b/manifests/1')).status).toBe(200)
    expect(r.seen.map((s) => s.authorization)).toEqual(['Bearer tk-1-anon', 'Bearer tk-2-anon'])
  })

  it('adds the scope a challenge asks for to the token request', async () => {
    const r = await registry({ auth: 'bearer', publicRepos: ['a/b'] })
    const c = client(r)
    const res = await c.request(r.upstream, { method: 'GET', path: 'a/b/manifests/1', scope: 'registry:catalog:*' })
    await text(res.body)
    expect(res.status).toBe(200)
    expect(new URL(r.tokenRequests[0]!.url, r.url).searchParams.getAll('scope')).toEqual([
      'registry:catalog:*',
      'repository:a/b:pull',
    ])
  })
})

describe('OriginClient basic auth', () => {
  it('answers a Basic challenge with the configured credential, then sends it up front', async () => {
    const r = await registry({ auth: 'basic', users: USERS })
    const c = client(r, { creds: { kind: 'basic', username: 'bob', password: 'bob-pw' } })
    expect((await get(c, r, 'x/y/manifests/1')).status).toBe(200)
    expect((await get(c, r, 'x/y/manifests/2')).status).toBe(200)
    expect(r.seen.map((s) => s.authorization)).toEqual([undefined, basic('bob', 'bob-pw'), basic('bob', 'bob-pw')])
    expect(r.tokenRequests).toHaveLength(0)
  })

  it('passes the 401 on after one try with a wrong password', async () => {
    const r = await registry({ auth: 'basic', users: USERS })
    const c = client(r, { creds: { kind: 'basic', username: 'bob', password: 'nope' } })
    const res = await get(c, r, 'x/y/manifests/1')
    expect(res.status).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Basic realm="fake registry"')
    expect(r.seen).toHaveLength(2)
  })
})

describe('OriginClient with the client’s own Authorization', () => {
  it('forwards a client Bearer token verbatim and never fetches one itself', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const anon = client(r)
    // The client got its token from the realm itself, as it would after a passed-through 401.
    const tokenRes = await fetch(`${r.url}/token?service=fake&scope=repository:team/app:pull`, {
      headers: { authorization: basic('alice', 'alice-pw') },
    })
    const { token } = (await tokenRes.json()) as { token: string }
    const res = await get(anon, r, 'team/app/manifests/v1', `Bearer ${token}`)
    expect(res.status).toBe(200)
    expect(r.seen.map((s) => s.authorization)).toEqual([`Bearer ${token}`])
    expect(r.tokenRequests).toHaveLength(1)
  })

  it('trades a client Basic credential for a token when the registry wants Bearer', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const c = client(r)
    const res = await get(c, r, 'team/app/manifests/v1', basic('alice', 'alice-pw'))
    expect(res.status).toBe(200)
    expect(r.seen.map((s) => s.authorization)).toEqual([basic('alice', 'alice-pw'), 'Bearer tk-1-alice'])
    expect(r.tokenRequests.map((t) => t.authorization)).toEqual([basic('alice', 'alice-pw')])
  })

  it('forwards a client Basic credential to a Basic registry as is', async () => {
    const r = await registry({ auth: 'basic', users: USERS })
    const res = await get(client(r), r, 'x/y/manifests/1', basic('alice', 'alice-pw'))
    expect(res.status).toBe(200)
    expect(r.seen.map((s) => s.authorization)).toEqual([basic('alice', 'alice-pw')])
  })

  it('uses the client credential, not the configured one, when the client sent one', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const c = client(r, { creds: { kind: 'basic', username: 'bob', password: 'bob-pw' } })
    expect((await get(c, r, 'team/app/manifests/v1', basic('alice', 'alice-pw'))).status).toBe(200)
    const sent = [...r.seen, ...r.tokenRequests].map((s) => s.authorization)
    expect(sent.some((a) => a === basic('bob', 'bob-pw') || a?.endsWith('-bob'))).toBe(false)
  })

  it('never lets one client ride on a token another client’s credential obtained', async () => {
    const r = await registry({ auth: 'bearer', users: USERS, expiresIn: 3600 })
    const c = client(r, { creds: { kind: 'basic', username: 'bob', password: 'bob-pw' } })
    expect((await get(c, r, 'team/app/manifests/v1', basic('alice', 'alice-pw'))).status).toBe(200)
    // Configured-credential request: its own token, not alice's.
    expect((await get(c, r, 'team/app/manifests/v1')).status).toBe(200)
    expect(r.seen.at(-1)!.authorization).toBe('Bearer tk-2-bob')
    // A client with a wrong password gets the registry's 401, never a cached token.
    const bad = await get(c, r, 'team/app/manifests/v1', basic('alice', 'guess'))
    expect(bad.status).toBe(401)
    expect(bad.body).toBe(ERROR_BODY('UNAUTHORIZED'))
    const aliceToken = 'Bearer tk-1-alice'
    const badRequests = r.seen.slice(-1)
    expect(badRequests.map((s) => s.authorization)).toEqual([basic('alice', 'guess')])
    expect(r.sentWith(aliceToken)).toHaveLength(1)
    // The same client again reuses its own token: no new token request.
    const before = r.tokenRequests.length
    expect((await get(c, r, 'team/app/manifests/v2', basic('alice', 'alice-pw'))).status).toBe(200)
    expect(r.tokenRequests).toHaveLength(before)
    expect(r.sentWith(aliceToken)).toHaveLength(2)
  })
})

describe('OriginClient passes refusals through', () => {
  it('returns the registry’s own 401 when anonymous access is not enough', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const res = await get(client(r), r, 'team/app/manifests/v1')
    expect(res.status).toBe(401)
    expect(res.body).toBe(ERROR_BODY('DENIED'))
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="${r.url}/token",service="fake",scope="repository:team/app:pull",error="insufficient_scope"`,
    )
    expect(res.headers['content-type']).toMatch(/^application\/json/)
  })

  it('returns the registry’s first 401 (body intact) when the token server refuses the credential', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const c = client(r, { creds: { kind: 'basic', username: 'alice', password: 'wrong' } })
    const res = await get(c, r, 'team/app/manifests/v1')
    expect(res.status).toBe(401)
    expect(res.body).toBe(ERROR_BODY('UNAUTHORIZED'))
    expect(res.headers['content-length']).toBe(String(ERROR_BODY('UNAUTHORIZED').length))
    expect(res.headers['www-authenticate']).toContain('scope="repository:team/app:pull"')
    expect(r.seen).toHaveLength(1)
  })

  it('returns a 403 unchanged without trying again', async () => {
    const r = await registry({ auth: 'bearer', users: USERS, forbiddenRepos: ['team/locked'] })
    const c = client(r, { creds: { kind: 'basic', username: 'alice', password: 'alice-pw' } })
    const res = await get(c, r, 'team/locked/manifests/v1')
    expect(res.status).toBe(403)
    expect(res.body).toBe(ERROR_BODY('DENIED'))
    expect(r.seen).toHaveLength(2) // the 401, then the 403 with a token: no third try
  })

  it('never fetches an anonymous token for the base endpoint, so its challenge reaches the client', async () => {
    const r = await registry({ auth: 'bearer', users: USERS, publicRepos: ['a/b'] })
    const c = client(r)
    const cold = await get(c, r, '')
    expect(cold.status).toBe(401)
    expect(cold.headers['www-authenticate']).toBe(`Bearer realm="${r.url}/token",service="fake"`)
    // Nor once the realm is known and an anonymous token is cached for a public repository.
    expect((await get(c, r, 'a/b/manifests/1')).status).toBe(200)
    const warm = await get(c, r, '')
    expect(warm.status).toBe(401)
    expect(warm.headers['www-authenticate']).toBe(`Bearer realm="${r.url}/token",service="fake"`)
    expect(r.tokenRequests).toHaveLength(1)
    expect(r.seen.filter((s) => s.url === '/v2/').map((s) => s.authorization)).toEqual([undefined, undefined])
  })

  it('checks the base endpoint with a real credential: the configured one or the client’s', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const configured = client(r, { creds: { kind: 'basic', username: 'bob', password: 'bob-pw' } })
    expect((await get(configured, r, '')).status).toBe(200)
    expect(r.tokenRequests.map((t) => t.authorization)).toEqual([basic('bob', 'bob-pw')])
    const anon = client(r)
    expect((await get(anon, r, '', basic('alice', 'alice-pw'))).status).toBe(200)
    expect((await get(anon, r, '', basic('alice', 'guess'))).status).toBe(401)
    expect(r.tokenRequests.map((t) => t.authorization)).toEqual([
      basic('bob', 'bob-pw'),
      basic('alice', 'alice-pw'),
      basic('alice', 'guess'),
    ])
  })

  it('makes a relative realm absolute, both to fetch from and in the header it passes on', async () => {
    const r = await registry({ auth: 'bearer', users: USERS, publicRepos: ['a/b'], realm: 'relative' })
    const c = client(r)
    expect((await get(c, r, 'a/b/manifests/1')).status).toBe(200)
    expect(r.tokenRequests).toHaveLength(1)
    const res = await get(c, r, 'team/app/manifests/1')
    expect(res.status).toBe(401)
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="${r.url}/token",service="fake",scope="repository:team/app:pull",error="insufficient_scope"`,
    )
  })
})

describe('OriginClient pushes', () => {
  it('authenticates before sending a stream body, which cannot be sent twice', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const c = client(r, { creds: { kind: 'basic', username: 'alice', password: 'alice-pw' } })
    const payload = Buffer.alloc(200_000, 7)
    const res = await c.request(r.upstream, {
      method: 'PUT',
      path: 'team/app/blobs/uploads/u1',
      query: new URLSearchParams({ digest: 'sha256:ab' }),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(payload.byteLength) },
      body: Readable.from([payload.subarray(0, 100_000), payload.subarray(100_000)]),
    })
    await text(res.body)
    expect(res.status).toBe(201)
    expect(r.uploads.get('uploads/u1')).toEqual(payload)
    // One GET /v2/ to learn the scheme, then the PUT with a push token.
    expect(r.seen.map((s) => `${s.method} ${s.authorization ?? '-'}`)).toEqual(['GET -', 'PUT Bearer tk-1-alice'])
    expect(new URL(r.tokenRequests[0]!.url, r.url).searchParams.getAll('scope')).toEqual([
      'repository:team/app:pull,push',
    ])
  })

  it('retries a bodiless POST after the challenge and hands back the Location', async () => {
    const r = await registry({ auth: 'bearer', users: USERS })
    const res = await client(r).request(r.upstream, {
      method: 'POST',
      path: 'team/app/blobs/uploads/',
      clientAuthorization: basic('bob', 'bob-pw'),
    })
    await text(res.body)
    expect(res.status).toBe(202)
    expect(res.headers['location']).toBe('/v2/team/app/blobs/uploads/u1?_state=s1')
    expect(r.seen.at(-1)!.authorization).toBe('Bearer tk-1-bob')
  })
})
