/** The origin down, failing or rate-limited: content the agent holds is still served, and waits are bounded. */
import { randomBytes } from 'node:crypto'
import type http from 'node:http'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { OriginClient } from '../../shared/origin/index.ts'
import { agentFor, cleanup, fakeOrigin, readAll, serveBlob, sha256 } from './origin-faults-harness.ts'

describe('agent with the origin in trouble, for content it already holds', () => {
  const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}')
  const manifestDigest = sha256(manifest)
  const blob = randomBytes(128 * 1024)
  const blobDigest = sha256(blob)

  it.each([
    ['answers 503', (res: http.ServerResponse) => (res.writeHead(503), res.end())],
    ['resets every connection', (res: http.ServerResponse) => res.socket?.destroy()],
    [
      'rate-limits with a long Retry-After',
      (res: http.ServerResponse) => (res.writeHead(429, { 'retry-after': '3600' }), res.end()),
    ],
  ])('serves cached blobs and the cached tag, stale and marked so, while the origin %s', async (_, fault) => {
    let broken = false
    const origin = await fakeOrigin((req, res) => {
      if (broken) return fault(res)
      if (req.url === `/v2/x/blobs/${blobDigest}`) return serveBlob(req, res, blob)
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': manifestDigest,
        'content-length': String(manifest.length),
      })
      res.end(req.method === 'HEAD' ? undefined : manifest)
    })
    cleanup.push(() => origin.close())
    const agent = await agentFor(origin, ['--tag-ttl', '0s'])
    const fresh = await request(`${agent.url}/v2/x/manifests/v1`)
    expect(fresh.statusCode).toBe(200)
    expect(fresh.headers['warning']).toBeUndefined()
    await fresh.body.dump()
    expect(await readAll(`${agent.url}/v2/x/blobs/${blobDigest}`)).toMatchObject({ status: 200, digest: blobDigest })

    broken = true
    const stale = await request(`${agent.url}/v2/x/manifests/v1`)
    expect(stale.statusCode).toBe(200)
    expect(stale.headers['docker-content-digest']).toBe(manifestDigest)
    expect(stale.headers['warning']).toMatch(/^110 /)
    expect(Buffer.from(await stale.body.arrayBuffer()).equals(manifest)).toBe(true)
    expect(await readAll(`${agent.url}/v2/x/blobs/${blobDigest}`)).toMatchObject({ status: 200, digest: blobDigest })
    // The origin was asked about the tag (and answered badly): the tag was not served stale blindly.
    expect(origin.hits.get('/v2/x/manifests/v1')).toBeGreaterThanOrEqual(2)
  })
})

describe('what bounds a stalled origin', () => {
  // The agent uses the origin client's defaults (30 s for headers, 60 s of silence within a body, three tries);
  // the same client with millisecond bounds shows that each of them ends the wait.
  it('gives up on a body that goes silent after the bodyTimeout, and on missing headers after retries', async () => {
    const origin = await fakeOrigin((req, res) => {
      if (req.url!.includes('silent-body')) {
        res.writeHead(200, { 'content-length': '1000', 'content-type': 'application/octet-stream' })
        res.write(Buffer.alloc(10))
      }
      // else: never a status line
    })
    cleanup.push(() => origin.close())
    const client = new OriginClient({
      headersTimeoutMs: 100,
      bodyTimeoutMs: 100,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
    })
    cleanup.push(() => client.stop())
    const upstream = { registry: new URL(origin.url).host, baseUrl: new URL(origin.url) }

    const t0 = performance.now()
    const res = await client.request(upstream, { method: 'GET', path: 'x/blobs/silent-body' })
    expect(res.status).toBe(200)
    await expect(res.body.toArray()).rejects.toThrow()
    // undici's timeouts tick on a coarse (about a second) timer: bounded, not exact.
    expect(performance.now() - t0).toBeLessThan(5_000)

    const t1 = performance.now()
    await expect(client.request(upstream, { method: 'GET', path: 'x/manifests/no-headers' })).rejects.toMatchObject({
      code: 'ORIGIN_UNREACHABLE',
    })
    expect(origin.hits.get('/v2/x/manifests/no-headers')).toBe(2)
    expect(performance.now() - t1).toBeLessThan(8_000)
  })
})
