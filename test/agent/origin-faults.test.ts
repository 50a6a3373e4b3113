import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { describe, expect, it, vi } from 'vitest'
import {
  agentFor,
  blobHits,
  cleanup,
  downloadsSettled,
  fakeOrigin,
  readAll,
  serveBlob,
  sha256,
} from './origin-faults-harness.ts'

describe('agent against a faulty origin', () => {
  it('aborts a blob response whose bytes fail their digest and caches nothing', async () => {
    const good = randomBytes(3 * 1024 * 1024)
    const digest = sha256(good)
    const bad = Buffer.from(good)
    bad[bad.length - 1]! ^= 0xff // wrong in the very last byte: only the whole-blob digest can tell
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': String(bad.length), 'content-type': 'application/octet-stream' })
      res.end(bad)
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const url = `${agent.url}/v2/x/blobs/${digest}`
    const res = await request(url)
    expect(res.statusCode).toBe(200)
    let received = 0
    const read = (async () => {
      for await (const b of res.body) received += (b as Buffer).byteLength
    })()
    await expect(read).rejects.toThrow()
    // The client never got the whole body, so it cannot mistake it for a complete blob.
    expect(received).toBeLessThan(bad.length)
    // The store discards the partial before the failure is counted, so the client may see the abort first.
    await vi.waitFor(async () => {
      const metrics = await (await request(`${agent.url}/metrics`)).body.text()
      expect(metrics).toMatch(/shoal_digest_failures_total\{source="origin"\} 1/)
    })
    // Not cached: the next request goes to the origin again (and fails again).
    const again = await request(url)
    await expect(again.body.arrayBuffer()).rejects.toThrow()
    expect(origin.hits.get(`/v2/x/blobs/${digest}`)).toBe(2)
  })

  it('passes a 401 and its challenge from the origin to the client unchanged', async () => {
    const challenge = 'Basic realm="origin realm"'
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'application/json' })
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    for (const path of ['/v2/private/app/manifests/v1', `/v2/private/app/blobs/sha256:${'1'.repeat(64)}`]) {
      const res = await request(`${agent.url}${path}`)
      expect(res.statusCode).toBe(401)
      expect(res.headers['www-authenticate']).toBe(challenge)
      expect(await res.body.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] })
    }
  })

  it('rejects a manifest whose bytes do not match the digest the origin claims', async () => {
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': `sha256:${'2'.repeat(64)}`,
      })
      res.end('{"schemaVersion":2}')
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const res = await request(`${agent.url}/v2/x/manifests/v1`)
    expect(res.statusCode).toBe(502)
    expect(await res.body.json()).toMatchObject({ errors: [{ code: 'MANIFEST_INVALID' }] })
  })
})

describe('agent against an origin that fails and recovers', () => {
  it('retries a 5xx a bounded number of times with backoff, then gives the client a clean OCI error', async () => {
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end('down for maintenance')
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const digest = sha256(Buffer.from('never served'))
    const t0 = performance.now()
    const res = await request(`${agent.url}/v2/x/blobs/${digest}`)
    const ms = performance.now() - t0
    expect(res.statusCode).toBeGreaterThanOrEqual(500)
    expect(await res.body.json()).toMatchObject({ errors: [{ code: expect.any(String) }] })
    // Three tries in all (the origin client's default), spaced by a growing, jittered backoff, and no more.
    const tries = origin.log.filter((r) => r.path === `/v2/x/blobs/${digest}`)
    expect(tries).toHaveLength(3)
    const gaps = tries.slice(1).map((r, i) => r.at - tries[i]!.at)
    expect(gaps[0]).toBeGreaterThanOrEqual(90) // base 200 ms, equal jitter: at least half of it
    expect(gaps[1]).toBeGreaterThanOrEqual(190)
    expect(ms).toBeLessThan(5_000)
  })

  it('serves the blob once a 5xx passes, and caches it', async () => {
    const blob = randomBytes(256 * 1024)
    const digest = sha256(blob)
    let n = 0
    const origin = await fakeOrigin((req, res) => {
      if (++n <= 2) {
        res.writeHead(502)
        res.end()
        return
      }
      serveBlob(req, res, blob)
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const got = await readAll(`${agent.url}/v2/x/blobs/${digest}`)
    expect(got).toMatchObject({ status: 200, digest })
    expect(origin.hits.get(`/v2/x/blobs/${digest}`)).toBe(3)
  })

  it('honours Retry-After on 429, and passes a 429 on at once when the wait asked is beyond its bound', async () => {
    const blob = randomBytes(64 * 1024)
    const digest = sha256(blob)
    let n = 0
    let retryAfter = '1'
    const origin = await fakeOrigin((req, res) => {
      if (++n === 1) {
        res.writeHead(429, { 'retry-after': retryAfter, 'content-type': 'application/json' })
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')
        return
      }
      serveBlob(req, res, blob)
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const got = await readAll(`${agent.url}/v2/x/blobs/${digest}`)
    expect(got).toMatchObject({ status: 200, digest })
    const tries = origin.log.filter((r) => r.path === `/v2/x/blobs/${digest}`)
    expect(tries).toHaveLength(2)
    // The base backoff is 200 ms: only Retry-After explains a second's wait.
    expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(950)

    // An hour is more than the agent will hold a client for: the 429 goes back with its Retry-After, unretried.
    n = 0
    retryAfter = '3600'
    const other = sha256(Buffer.from('rate limited'))
    const t0 = performance.now()
    const res = await request(`${agent.url}/v2/x/blobs/${other}`)
    expect(res.statusCode).toBe(429)
    expect(res.headers['retry-after']).toBe('3600')
    await res.body.dump()
    expect(performance.now() - t0).toBeLessThan(2_000)
    expect(origin.hits.get(`/v2/x/blobs/${other}`)).toBe(1)
  })

  it('resumes a blob whose connection was reset mid-body with a Range request; the client gets every byte', async () => {
    const blob = randomBytes(3 * 1024 * 1024)
    const digest = sha256(blob)
    let n = 0
    const origin = await fakeOrigin((req, res) => {
      if (++n === 1) {
        res.writeHead(200, { 'content-length': String(blob.length), 'content-type': 'application/octet-stream' })
        res.write(blob.subarray(0, 2 * 1024 * 1024 + 12345), () => res.socket?.end())
        return
      }
      serveBlob(req, res, blob)
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const got = await readAll(`${agent.url}/v2/x/blobs/${digest}`)
    expect(got).toMatchObject({ status: 200, digest, bytes: blob.length })
    const tries = origin.log.filter((r) => r.path === `/v2/x/blobs/${digest}`)
    expect(tries).toHaveLength(2)
    // It asked only for what it did not have yet (whole appends of what arrived before the reset).
    const from = Number(/^bytes=(\d+)-$/.exec(tries[1]!.range ?? '')?.[1])
    expect(from).toBeGreaterThan(0)
    expect(from).toBeLessThanOrEqual(2 * 1024 * 1024 + 12345)
    // Cached whole: the next client is served from disk.
    await downloadsSettled(agent)
    const before = await blobHits(agent)
    expect(await readAll(`${agent.url}/v2/x/blobs/${digest}`)).toMatchObject({ status: 200, digest })
    expect((await blobHits(agent)) - before).toBe(1)
    expect(origin.hits.get(`/v2/x/blobs/${digest}`)).toBe(2)
  })

  it('never caches a blob cut short again and again: a clean error, then a later request completes it', async () => {
    const blob = randomBytes(3 * 1024 * 1024)
    const digest = sha256(blob)
    let healthy = false
    const origin = await fakeOrigin((req, res) => {
      if (healthy) return serveBlob(req, res, blob)
      const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0)
      const body = blob.subarray(from)
      res.writeHead(from === 0 ? 200 : 206, {
        'content-length': String(body.length),
        'content-type': 'application/octet-stream',
        ...(from === 0 ? {} : { 'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}` }),
      })
      // A little each time, never the end.
      res.write(body.subarray(0, 100 * 1024), () => res.socket?.end())
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const url = `${agent.url}/v2/x/blobs/${digest}`
    const res = await request(url)
    // The response had started (streaming): the client sees its body break off, never a blob that looks whole.
    expect(res.statusCode).toBe(200)
    await expect(res.body.arrayBuffer()).rejects.toThrow()
    // Bounded: the first try and two resumes, each asking only for what has not arrived yet (the bytes that were
    // read before a break are kept; a break can also lose what was still in flight, so how much varies).
    const from = (): number[] =>
      origin.log
        .filter((r) => r.path === `/v2/x/blobs/${digest}`)
        .map((r) => Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1] ?? 0))
    expect(from()).toHaveLength(3)
    expect(from()).toEqual([...from()].sort((a, b) => a - b))
    expect(from()[2]).toBeGreaterThan(0)
    // Not cached short: the next client goes to the origin again, which now completes the blob.
    healthy = true
    const before = await blobHits(agent)
    expect(await readAll(url)).toMatchObject({ status: 200, digest, bytes: blob.length })
    expect((await blobHits(agent)) - before).toBe(0)
    // It resumed from what the failed request left on disk, which was never served as a whole blob.
    expect(from()).toHaveLength(4)
    expect(from()[3]).toBeGreaterThan(from()[2]!)
  })

  it('answers a clean 503 (not a 500) when every try breaks off before the first byte', async () => {
    const digest = sha256(Buffer.from('never arrives'))
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': String(1024 * 1024), 'content-type': 'application/octet-stream' })
      res.flushHeaders()
      res.socket?.end()
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const res = await request(`${agent.url}/v2/x/blobs/${digest}`)
    expect(res.statusCode).toBe(503)
    expect(await res.body.json()).toMatchObject({ errors: [{ code: expect.any(String) }] })
    expect(origin.hits.get(`/v2/x/blobs/${digest}`)).toBe(3)
  })

  it('discards a resumed blob whose second half fails the digest; nothing is cached', async () => {
    const blob = randomBytes(3 * 1024 * 1024)
    const digest = sha256(blob)
    const wrong = Buffer.from(blob)
    wrong[wrong.length - 1]! ^= 0xff
    let n = 0
    const origin = await fakeOrigin((req, res) => {
      if (++n === 1) {
        res.writeHead(200, { 'content-length': String(blob.length), 'content-type': 'application/octet-stream' })
        res.write(blob.subarray(0, 2 * 1024 * 1024), () => res.socket?.end())
        return
      }
      // The resume (and every later request) gets bytes that do not match the digest.
      serveBlob(req, res, wrong)
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const url = `${agent.url}/v2/x/blobs/${digest}`
    const res = await request(url)
    await expect(res.body.arrayBuffer()).rejects.toThrow()
    await vi.waitFor(async () => {
      const metrics = await (await request(`${agent.url}/metrics`)).body.text()
      expect(metrics).toMatch(/shoal_digest_failures_total\{source="origin"\} 1/)
    })
    // The bad bytes were not kept even to resume from: the next try starts from byte 0, and fails again.
    const hitsBefore = origin.log.length
    const again = await request(url)
    await expect(again.body.arrayBuffer()).rejects.toThrow()
    expect(origin.log[hitsBefore]!.range).toBeUndefined()
    expect(await blobHits(agent)).toBe(0)
  })

  it('streams from a slow origin: the client has bytes long before the origin is done', async () => {
    const blob = randomBytes(3 * 1024 * 1024)
    const digest = sha256(blob)
    let originDoneAt = 0
    const origin = await fakeOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': String(blob.length), 'content-type': 'application/octet-stream' })
      // 64 KiB every 10 ms: about half a second for the whole blob.
      let off = 0
      const tick = (): void => {
        res.write(blob.subarray(off, off + 64 * 1024))
        off += 64 * 1024
        if (off < blob.length) {
          setTimeout(tick, 10)
          return
        }
        originDoneAt = performance.now()
        res.end()
      }
      tick()
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin)
    const got = await readAll(`${agent.url}/v2/x/blobs/${digest}`)
    expect(got).toMatchObject({ status: 200, digest })
    expect(originDoneAt).toBeGreaterThan(0)
    expect(got.firstByteAt).toBeLessThan(originDoneAt)
  })
})
