import { afterEach, describe, expect, it } from 'vitest'
import {
  InvalidOriginPathError,
  OriginClient,
  type OriginClientOptions,
  OriginError,
} from '../../../shared/origin/index.ts'
import { type Seen, startApp, text, upstreamOf } from './fake-registry.ts'
import { freePort } from '../../../harness/e2e/process.ts'

/** Stops what a test started (servers close, clients stop). */
const open: (() => Promise<unknown>)[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((stop) => stop()))
})

async function app(setup: Parameters<typeof startApp>[0]) {
  const a = await startApp(setup)
  open.push(() => a.app.close())
  return a
}

function client(opts: OriginClientOptions = {}): OriginClient {
  const c = new OriginClient({ retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2000 }, ...opts })
  open.push(() => c.stop())
  return c
}

function record(seen: Seen[]) {
  return (req: { method: string; url: string; headers: Seen['headers'] }) => {
    seen.push({
      method: req.method,
      url: req.url,
      authorization: req.headers['authorization'] as string,
      headers: req.headers,
    })
  }
}

describe('OriginClient retries', () => {
  it('retries GET on 503 until it succeeds', async () => {
    let n = 0
    const { url } = await app((a) => {
      a.get('/v2/a/b/manifests/x', (_req, reply) => (++n < 3 ? reply.code(503).send('busy') : reply.send('ok')))
    })
    const res = await client().request(upstreamOf(url), { method: 'GET', path: 'a/b/manifests/x' })
    expect(res.status).toBe(200)
    expect(await text(res.body)).toBe('ok')
    expect(n).toBe(3)
  })

  it('gives the last 5xx answer back once the attempts are spent', async () => {
    let n = 0
    const { url } = await app((a) => {
      a.get('/v2/a/b/manifests/x', (_req, reply) => reply.code(502).send(`fail ${++n}`))
    })
    const res = await client().request(upstreamOf(url), { method: 'GET', path: 'a/b/manifests/x' })
    expect(res.status).toBe(502)
    expect(await text(res.body)).toBe('fail 3')
  })

  it('waits as long as Retry-After says on 429', async () => {
    const at: number[] = []
    const { url } = await app((a) => {
      a.get('/v2/a/b/manifests/x', (_req, reply) => {
        at.push(performance.now())
        return at.length === 1 ? reply.code(429).header('retry-after', '1').send() : reply.send('ok')
      })
    })
    const res = await client().request(upstreamOf(url), { method: 'GET', path: 'a/b/manifests/x' })
    await text(res.body)
    expect(res.status).toBe(200)
    // baseDelayMs is 1 ms: only Retry-After explains a pause this long.
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(950)
  })

  it('hands back a 429 at once when Retry-After is beyond maxDelayMs', async () => {
    let n = 0
    const { url } = await app((a) => {
      a.get('/v2/a/b/manifests/x', (_req, reply) => {
        n++
        return reply.code(429).header('retry-after', 'Wed, 21 Oct 2099 07:28:00 GMT').send('slow down')
      })
    })
    const res = await client().request(upstreamOf(url), { method: 'GET', path: 'a/b/manifests/x' })
    expect(res.status).toBe(429)
    expect(res.headers['retry-after']).toBe('Wed, 21 Oct 2099 07:28:00 GMT')
    expect(await text(res.body)).toBe('slow down')
    expect(n).toBe(1)
  })

  it('does not retry a PUT or POST', async () => {
    let n = 0
    const { url } = await app((a) => {
      a.post('/v2/a/b/blobs/uploads/', (_req, reply) => {
        n++
        return reply.code(503).send()
      })
    })
    const res = await client().request(upstreamOf(url), { method: 'POST', path: 'a/b/blobs/uploads/' })
    res.body.destroy()
    expect(res.status).toBe(503)
    expect(n).toBe(1)
  })

  it('retries a connection reset before any answer', async () => {
    let n = 0
    const { url } = await app((a) => {
      a.get('/v2/a/b/manifests/x', (req, reply) => {
        if (++n === 1) {
          req.raw.socket.destroy()
          return reply
        }
        return reply.send('ok')
      })
    })
    const res = await client().request(upstreamOf(url), { method: 'GET', path: 'a/b/manifests/x' })
    expect(await text(res.body)).toBe('ok')
    expect(n).toBe(2)
  })

  it('throws ORIGIN_UNREACHABLE when nobody listens, without secrets in the message', async () => {
    const port = await freePort()
    const c = client({ retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } })
    const err = await c
      .request(upstreamOf(`http://127.0.0.1:${port}`), {
        method: 'GET',
        path: 'a/b/manifests/x',
        query: new URLSearchParams({ sig: 'secret-sig' }),
        clientAuthorization: 'Bearer secret-token',
      })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OriginError)
    expect((err as OriginError).code).toBe('ORIGIN_UNREACHABLE')
    expect((err as Error).message).toContain(`http://127.0.0.1:${port}/v2/a/b/manifests/x`)
    expect((err as Error).message).not.toMatch(/secret/)
  })

  it('stops at once when the caller aborts', async () => {
    let n = 0
    const { url } = await app((a) => {
      a.get('/v2/a/b/manifests/x', () => {
        n++
        return new Promise(() => {}) // never answers
      })
    })
    const ac = new AbortController()
    const p = client().request(upstreamOf(url), { method: 'GET', path: 'a/b/manifests/x', signal: ac.signal })
    while (n === 0) await new Promise((r) => setImmediate(r))
    ac.abort()
    await expect(p).rejects.toMatchObject({ name: 'AbortError' })
    expect(n).toBe(1)
  })
})

describe('OriginClient redirects', () => {
  it('follows a blob redirect to storage without the Authorization header', async () => {
    const storageSeen: Seen[] = []
    const storage = await app((a) => {
      a.addHook('onRequest', async (req) => record(storageSeen)(req))
      a.get('/bucket/blob', (req, reply) => reply.code(206).send(`part of blob (${req.headers.range})`))
    })
    const registrySeen: Seen[] = []
    const { url } = await app((a) => {
      a.addHook('onRequest', async (req) => record(registrySeen)(req))
      a.get('/v2/a/b/blobs/b1', (_req, reply) => reply.redirect(`${storage.url}/bucket/blob?X-Amz-Signature=abc`, 307))
    })
    const res = await client().request(upstreamOf(url), {
      method: 'GET',
      path: 'a/b/blobs/b1',
      headers: { range: 'bytes=0-9' },
      clientAuthorization: 'Bearer client-token',
    })
    expect(res.status).toBe(206)
    expect(await text(res.body)).toBe('part of blob (bytes=0-9)')
    expect(registrySeen.map((s) => s.authorization)).toEqual(['Bearer client-token'])
    expect(storageSeen).toHaveLength(1)
    expect(storageSeen[0]!.authorization).toBeUndefined()
    expect(storageSeen[0]!.url).toBe('/bucket/blob?X-Amz-Signature=abc')
  })

  it('keeps the Authorization header on a redirect to the same origin', async () => {
    const seen: Seen[] = []
    const { url } = await app((a) => {
      a.addHook('onRequest', async (req) => record(seen)(req))
      a.get('/v2/a/b/blobs/b1', (_req, reply) => reply.redirect('/v2/a/b/blobs/b2', 302))
      a.get('/v2/a/b/blobs/b2', (_req, reply) => reply.send('moved'))
    })
    const res = await client().request(upstreamOf(url), {
      method: 'GET',
      path: 'a/b/blobs/b1',
      clientAuthorization: 'Bearer t',
    })
    expect(await text(res.body)).toBe('moved')
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer t', 'Bearer t'])
  })

  it('gives up on a redirect loop', async () => {
    const { url } = await app((a) => {
      a.get('/v2/a/b/blobs/b1', (_req, reply) => reply.redirect('/v2/a/b/blobs/b1', 302))
    })
    const err = await client()
      .request(upstreamOf(url), { method: 'GET', path: 'a/b/blobs/b1' })
      .catch((e: unknown) => e)
    expect((err as OriginError).code).toBe('ORIGIN_BAD_REDIRECT')
  })

  it('returns a redirect to a PUT as is', async () => {
    const { url } = await app((a) => {
      a.put('/v2/a/b/blobs/uploads/u', (_req, reply) => reply.redirect('/elsewhere', 307))
    })
    const res = await client().request(upstreamOf(url), {
      method: 'PUT',
      path: 'a/b/blobs/uploads/u',
      body: new Uint8Array([1, 2, 3]),
    })
    res.body.destroy()
    expect(res.status).toBe(307)
    expect(res.headers['location']).toBe('/elsewhere')
  })
})

describe('OriginClient requests', () => {
  it('counts every body byte received', async () => {
    const blob = Buffer.alloc(300_000, 1)
    const { url } = await app((a) => {
      a.get('/v2/a/b/blobs/b1', (_req, reply) => reply.send(blob))
    })
    let bytes = 0
    const c = client({ onBytes: (n) => (bytes += n) })
    const res = await c.request(upstreamOf(url), { method: 'GET', path: 'a/b/blobs/b1' })
    expect((await text(res.body)).length).toBe(blob.byteLength)
    expect(bytes).toBe(blob.byteLength)
  })

  it('drops hop-by-hop and client-owned headers, and sets a User-Agent', async () => {
    const seen: Seen[] = []
    const { url } = await app((a) => {
      a.addHook('onRequest', async (req) => record(seen)(req))
      a.get('/v2/a/b/manifests/x', (_req, reply) => reply.header('keep-alive', 'timeout=5').send('{}'))
    })
    const res = await client({ userAgent: 'shoal-test' }).request(upstreamOf(url), {
      method: 'GET',
      path: 'a/b/manifests/x',
      headers: {
        accept: 'application/vnd.oci.image.index.v1+json',
        Connection: 'x-private',
        'x-private': '1',
        'proxy-authorization': 'Basic c2VjcmV0',
        authorization: 'Bearer smuggled',
        'accept-encoding': 'gzip',
        te: 'trailers',
      },
    })
    await text(res.body)
    const h = seen[0]!.headers
    expect(h['accept']).toBe('application/vnd.oci.image.index.v1+json')
    expect(h['user-agent']).toBe('shoal-test')
    for (const name of ['x-private', 'proxy-authorization', 'authorization', 'accept-encoding', 'te']) {
      expect(h[name], name).toBeUndefined()
    }
    expect(res.headers['keep-alive']).toBeUndefined()
    expect(res.headers['content-length']).toBe('2')
  })

  it('refuses paths that could leave /v2/', async () => {
    const c = client()
    const upstream = upstreamOf('http://127.0.0.1:9')
    for (const path of ['../x', 'a/../../x', 'a/%2e%2e/x', 'a?b=c', 'a#b', '/a', 'a//b', 'a\\b', 'a b']) {
      await expect(c.request(upstream, { method: 'GET', path }), path).rejects.toBeInstanceOf(InvalidOriginPathError)
    }
  })

  it('sends requests below a path prefix', async () => {
    const seen: Seen[] = []
    const { url } = await app((a) => {
      a.addHook('onRequest', async (req) => record(seen)(req))
      a.get('/artifactory/api/docker/repo/v2/a/b/manifests/x', (_req, reply) => reply.send('ok'))
    })
    const upstream = { registry: new URL(url).host, baseUrl: new URL(`${url}/artifactory/api/docker/repo`) }
    const res = await client().request(upstream, {
      method: 'GET',
      path: 'a/b/manifests/x',
      query: new URLSearchParams({ ns: 'docker.io' }),
    })
    expect(await text(res.body)).toBe('ok')
    expect(seen[0]!.url).toBe('/artifactory/api/docker/repo/v2/a/b/manifests/x?ns=docker.io')
  })
})
