import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { type Rig, startRig } from './harness.ts'

let rig: Rig | undefined
afterEach(async () => {
  await rig?.stop()
  rig = undefined
})

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  if (url.includes('%')) return rawGet(url)
  const res = await request(url, { method, headers })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body }
}

/** node:http sends the path as written; WHATWG URL parsing (undici) would normalize `%2e%2e` away first. */
function rawGet(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const u = new URL(url.slice(0, url.indexOf('/', 8)))
  const path = url.slice(url.indexOf('/', 8))
  return new Promise((resolve, reject) => {
    http
      .get({ host: u.hostname, port: u.port, path }, (res) => {
        const parts: Buffer[] = []
        res.on('data', (b: Buffer) => parts.push(b))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }))
      })
      .on('error', reject)
  })
}

describe('agent as a registry mirror', () => {
  it('answers /v2/ with the API version header', async () => {
    rig = await startRig()
    const r = await get(`${rig.agent.url}/v2/`)
    expect(r.status).toBe(200)
    expect(r.headers['docker-distribution-api-version']).toBe('registry/2.0')
  })

  it('serves manifests by tag and digest with the right headers, and HEAD without a body', async () => {
    rig = await startRig()
    const root = rig.image.root
    const byTag = await get(`${rig.agent.url}/v2/demo/app/manifests/v1`)
    expect(byTag.status).toBe(200)
    expect(byTag.headers['docker-content-digest']).toBe(root.digest)
    expect(byTag.headers['content-type']).toBe(root.mediaType)
    expect(Number(byTag.headers['content-length'])).toBe(root.bytes.byteLength)
    expect(sha256(byTag.body)).toBe(root.digest)

    const head = await get(`${rig.agent.url}/v2/demo/app/manifests/v1`, {}, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.body.byteLength).toBe(0)
    expect(Number(head.headers['content-length'])).toBe(root.bytes.byteLength)
    expect(head.headers['docker-content-digest']).toBe(root.digest)

    const byDigest = await get(`${rig.agent.url}/v2/demo/app/manifests/${root.digest}`)
    expect(byDigest.body.equals(Buffer.from(root.bytes))).toBe(true)
  })

  it('streams a blob, caches it, and fetches it from the origin once for concurrent clients', async () => {
    rig = await startRig({ layers: 1, layerBytes: 8 * 1024 * 1024 })
    const blob = rig.image.blobs.find((b) => b.size > 1024 * 1024)!
    const url = `${rig.agent.url}/v2/demo/app/blobs/${blob.digest}`
    const results = await Promise.all([get(url), get(url), get(url), get(url)])
    for (const r of results) {
      expect(r.status).toBe(200)
      expect(sha256(r.body)).toBe(blob.digest)
    }
    expect(rig.origin.stats.perBlob.get(blob.digest)?.requests).toBe(1)
    const again = await get(url)
    expect(sha256(again.body)).toBe(blob.digest)
    expect(rig.origin.stats.perBlob.get(blob.digest)?.requests).toBe(1)
    const metrics = (await get(`${rig.agent.url}/metrics`)).body.toString()
    expect(metrics).toMatch(new RegExp(`shoal_bytes_received_total\\{source="origin"\\} ${blob.size}\\b`))
    // Four clients served while it downloaded, one from the cache (its stream counts once it closes).
    const served = async () => (await get(`${rig!.agent.url}/metrics`)).body.toString()
    await expect.poll(served).toMatch(new RegExp(`shoal_bytes_served_total\\{to="client"\\} ${5 * blob.size}\\b`))
  })

  it('answers Range requests with 206 and unsatisfiable ones with 416, cold and cached', async () => {
    rig = await startRig({ layers: 1, layerBytes: 1024 * 1024 })
    const blob = rig.image.blobs.find((b) => b.size > 1024 * 1024)!
    const bytes = await readFile(blob.path)
    const url = `${rig.agent.url}/v2/demo/app/blobs/${blob.digest}`
    for (const pass of ['cold', 'cached']) {
      const r = await get(url, { range: 'bytes=1000-1999' })
      expect(r.status, pass).toBe(206)
      expect(r.headers['content-range']).toBe(`bytes 1000-1999/${blob.size}`)
      expect(r.body.equals(bytes.subarray(1000, 2000))).toBe(true)
      const bad = await get(url, { range: `bytes=${blob.size}-` })
      expect(bad.status, pass).toBe(416)
      expect(bad.headers['content-range']).toBe(`bytes */${blob.size}`)
    }
  })

  it('serves a cached tag stale (with Warning) and cached blobs while the origin is down', async () => {
    rig = await startRig({ extraArgs: ['--tag-ttl', '0s'] })
    const blob = rig.image.blobs[0]!
    await get(`${rig.agent.url}/v2/demo/app/manifests/v1`)
    await get(`${rig.agent.url}/v2/demo/app/blobs/${blob.digest}`)
    await rig.origin.stop()
    const m = await get(`${rig.agent.url}/v2/demo/app/manifests/v1`)
    expect(m.status).toBe(200)
    expect(m.headers['warning']).toMatch(/^110 /)
    expect(m.headers['docker-content-digest']).toBe(rig.image.root.digest)
    const b = await get(`${rig.agent.url}/v2/demo/app/blobs/${blob.digest}`)
    expect(b.status).toBe(200)
    expect(sha256(b.body)).toBe(blob.digest)
    const unknown = await get(`${rig.agent.url}/v2/demo/app/manifests/other`)
    expect(unknown.status).toBe(503)
    expect(JSON.parse(unknown.body.toString()).errors[0].code).toBe('UNAVAILABLE')
  })

  it.each([
    ['/v2/UPPER/manifests/v1', 400, 'NAME_INVALID'],
    ['/v2/demo/app/blobs/sha256:1234', 400, 'DIGEST_INVALID'],
    ['/v2/demo/%2e%2e/blobs/sha256:1234', 400, 'NAME_INVALID'],
    [`/v2/demo%2Fapp/blobs/sha256:${'0'.repeat(64)}`, 400, 'NAME_INVALID'],
    ['/v2/demo/app/manifests/nope', 404, 'MANIFEST_UNKNOWN'],
    [`/v2/demo/app/blobs/sha256:${'0'.repeat(64)}`, 404, 'BLOB_UNKNOWN'],
    ['/elsewhere', 404, 'NAME_UNKNOWN'],
  ])('answers %s with %i %s in an OCI error body', async (path, status, code) => {
    rig = await startRig()
    const r = await get(`${rig.agent.url}${path}`)
    expect(r.status).toBe(status)
    expect(JSON.parse(r.body.toString()).errors[0].code).toBe(code)
  })

  it('refuses writes with UNSUPPORTED when read-only', async () => {
    rig = await startRig({ extraArgs: ['--read-only'] })
    const res = await request(`${rig.agent.url}/v2/demo/app/blobs/uploads/`, { method: 'POST' })
    expect(res.statusCode).toBe(405)
    expect((await res.body.json()) as unknown).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] })
  })
})
