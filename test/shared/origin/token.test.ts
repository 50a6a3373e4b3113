import type { FastifyReply } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { credentialIdentity, parseBasicAuthorization } from '../../../shared/origin/credentials.ts'
import { OriginClient, OriginError } from '../../../shared/origin/index.ts'
import { resolveRealm } from '../../../shared/origin/token.ts'
import { TokenCache } from '../../../shared/origin/token-cache.ts'
import { MAX_CACHED_TOKENS } from '../../../shared/origin/constants.ts'
import { startApp, upstreamOf } from './fake-registry.ts'

describe('credentialIdentity', () => {
  it('is stable per credential, distinct across credentials, and does not contain the secret', () => {
    const a = credentialIdentity({ kind: 'basic', username: 'alice', password: 'hunter2' })
    expect(credentialIdentity({ kind: 'basic', username: 'alice', password: 'hunter2' })).toBe(a)
    expect(credentialIdentity({ kind: 'basic', username: 'alice', password: 'hunter3' })).not.toBe(a)
    expect(credentialIdentity({ kind: 'bearer', token: 'alice:hunter2' })).not.toBe(a)
    expect(credentialIdentity(undefined)).toBe('anonymous')
    expect(a).not.toContain('hunter2')
    expect(a).not.toContain(Buffer.from('alice:hunter2').toString('base64'))
  })

  it('decodes a client Basic header and nothing else', () => {
    const h = `Basic ${Buffer.from('u:p:with:colons').toString('base64')}`
    expect(parseBasicAuthorization(h)).toEqual({ kind: 'basic', username: 'u', password: 'p:with:colons' })
    expect(parseBasicAuthorization('Bearer abc')).toBeUndefined()
    expect(parseBasicAuthorization(`Basic ${Buffer.from('nocolon').toString('base64')}`)).toBeUndefined()
    expect(parseBasicAuthorization('Basic !!!')).toBeUndefined()
  })
})

describe('resolveRealm', () => {
  const https = { registry: 'r.example', baseUrl: new URL('https://r.example/') }
  const base = new URL('https://r.example/v2/a/manifests/x')
  it('resolves relative realms against the answering URL', () => {
    expect(resolveRealm(https, '/token', base).href).toBe('https://r.example/token')
    expect(resolveRealm(https, 'https://auth.example/t?x=1', base).href).toBe('https://auth.example/t?x=1')
  })
  it.each([
    ['http://auth.example/token', 'plain http for an https registry'],
    ['file:///etc/passwd', 'other schemes'],
    ['https://u:p@auth.example/', 'userinfo'],
  ])('refuses %s (%s)', (realm) => {
    expect(() => resolveRealm(https, realm, base)).toThrow(OriginError)
  })
  it('allows an http realm for an http registry', () => {
    const http = { registry: 'lab:5000', baseUrl: new URL('http://lab:5000/') }
    expect(resolveRealm(http, 'http://lab:5001/token', base).href).toBe('http://lab:5001/token')
  })
})

describe('TokenCache', () => {
  it('expires entries with a margin of at most half their life and evicts the oldest', () => {
    let now = 0
    const c = new TokenCache({ now: () => now, maxEntries: 2 })
    c.set('a', 'ta', 300)
    c.set('b', 'tb', 4)
    now = 1999
    expect(c.get('b')).toBe('tb')
    now = 2000
    expect(c.get('b')).toBeUndefined()
    now = 289_999
    expect(c.get('a')).toBe('ta')
    c.set('c', 'tc', 300)
    c.set('d', 'td', 300)
    expect(c.get('a')).toBeUndefined()
    expect(c.size).toBe(2)
  })

  it('holds at most MAX_CACHED_TOKENS after 10,000 distinct rotating client credentials', () => {
    let now = 1_000_000
    const c = new TokenCache({ now: () => now })
    for (let i = 0; i < 10_000; i++) c.set(TokenCache.key('r.io', 'repository:a:pull', `client-${i}`), `t${i}`, 300)
    expect(c.size).toBe(MAX_CACHED_TOKENS)
    expect(MAX_CACHED_TOKENS).toBeLessThan(10_000)
    expect(c.get(TokenCache.key('r.io', 'repository:a:pull', 'client-9999'))).toBe('t9999')
    expect(c.get(TokenCache.key('r.io', 'repository:a:pull', 'client-0'))).toBeUndefined()
    now += 300_000
    expect(c.get(TokenCache.key('r.io', 'repository:a:pull', 'client-9999'))).toBeUndefined()
  })
})

describe('token server failures', () => {
  const open: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((stop) => stop()))
  })

  async function withTokenAnswer(answer: (reply: FastifyReply) => unknown) {
    let tokenCalls = 0
    const { app, url } = await startApp((a) => {
      a.get('/token', (_req, reply) => {
        tokenCalls++
        return answer(reply)
      })
      a.get('/v2/a/b/manifests/x', (req, reply) =>
        req.headers.authorization === undefined
          ? reply.code(401).header('www-authenticate', 'Bearer realm="/token",service="s"').send()
          : reply.send('ok'),
      )
    })
    open.push(() => app.close())
    const c = new OriginClient({ retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } })
    open.push(() => c.stop())
    const err = await c.request(upstreamOf(url), { method: 'GET', path: 'a/b/manifests/x' }).catch((e: unknown) => e)
    return { err: err as OriginError, tokenCalls: () => tokenCalls }
  }

  it('retries a 5xx, then fails with TOKEN_FETCH_FAILED', async () => {
    const { err, tokenCalls } = await withTokenAnswer((r) => r.code(503).send())
    expect(err).toBeInstanceOf(OriginError)
    expect(err.code).toBe('TOKEN_FETCH_FAILED')
    expect(tokenCalls()).toBe(2)
  })

  it('refuses an answer over 1 MiB', async () => {
    const { err } = await withTokenAnswer((r) => r.send({ token: 'x', pad: 'p'.repeat(1024 * 1024) }))
    expect(err.code).toBe('TOKEN_FETCH_FAILED')
    expect(err.message).toMatch(/larger than/)
  })

  it('refuses a token that could break the header', async () => {
    const { err } = await withTokenAnswer((r) => r.send({ token: 'abc\r\nx-injected: 1' }))
    expect(err.code).toBe('TOKEN_FETCH_FAILED')
  })

  it('refuses an answer that is not JSON', async () => {
    const { err } = await withTokenAnswer((r) => r.type('text/html').send('<html>'))
    expect(err.code).toBe('TOKEN_FETCH_FAILED')
  })
})
