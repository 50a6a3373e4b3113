import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoOrigin, startDemoOrigin } from '../../../shared/sample/origin.ts'
import { digestOf, OCI_INDEX } from '../../../shared/oci/index.ts'
import { generateSampleImage, type SampleBlob, type SampleImage } from '../../../shared/sample/index.ts'

const ZERO_DIGEST = `sha256:${'0'.repeat(64)}`

describe('demo origin', () => {
  let dir: string
  let app: SampleImage
  let tools: SampleImage
  let origin: DemoOrigin
  let layer: SampleBlob

  const get = async (
    path: string,
    opts: { method?: 'GET' | 'HEAD' | 'PUT' | 'POST'; headers?: Record<string, string> } = {},
  ) => {
    const res = await request(`${origin.url}${path}`, { method: opts.method ?? 'GET', headers: opts.headers ?? {} })
    const body = Buffer.from(await res.body.arrayBuffer())
    return { status: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body.toString()) as unknown }
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-origin-'))
    app = await generateSampleImage({
      dir,
      layers: 2,
      layerBytes: 200_000,
      platforms: ['linux/amd64', 'linux/arm64'],
      seed: 'origin',
    })
    tools = await generateSampleImage({ dir, layers: 1, layerBytes: 1000, format: 'docker', seed: 'tools' })
    layer = app.blobs.find((b) => b.size > 200_000)!
    origin = await startDemoOrigin({
      images: [
        { name: 'demo/app', tag: 'v1', image: app },
        { name: 'demo/app', tag: 'latest', image: app },
        { name: 'tools', tag: '1.0', image: tools },
      ],
    })
  })
  afterAll(async () => {
    await origin.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('answers the base endpoint, the catalog and tag lists', async () => {
    expect(origin.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const base = await get('/v2/')
    expect(base.status).toBe(200)
    expect(base.headers['docker-distribution-api-version']).toBe('registry/2.0')
    expect(base.json()).toEqual({})
    expect((await get('/v2')).status).toBe(200)
    expect((await get('/v2/_catalog')).json()).toEqual({ repositories: ['demo/app', 'tools'] })
    expect((await get('/v2/demo/app/tags/list')).json()).toEqual({ name: 'demo/app', tags: ['latest', 'v1'] })
    expect((await get('/v2/nope/tags/list')).json()).toMatchObject({ errors: [{ code: 'NAME_UNKNOWN' }] })
  })

  it('serves manifests by tag and digest with their media type, length and digest', async () => {
    const head = await get('/v2/demo/app/manifests/v1', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-type']).toBe(OCI_INDEX)
    expect(head.headers['content-length']).toBe(String(app.root.bytes.byteLength))
    expect(head.headers['docker-content-digest']).toBe(app.root.digest)
    expect(head.body.length).toBe(0)

    const byTag = await get('/v2/demo/app/manifests/v1?ns=docker.io')
    expect(byTag.body).toEqual(Buffer.from(app.root.bytes))
    for (const m of app.manifests) {
      const res = await get(`/v2/demo/app/manifests/${m.digest}`)
      expect(res.status).toBe(200)
      expect(res.headers['content-type']).toBe(m.mediaType)
      expect(digestOf(res.body)).toBe(m.digest)
    }
    const docker = await get('/v2/tools/manifests/1.0')
    expect(docker.headers['content-type']).toBe('application/vnd.docker.distribution.manifest.v2+json')
    // Repositories are separate: another repository's manifest is unknown here.
    expect((await get(`/v2/tools/manifests/${app.root.digest}`)).json()).toMatchObject({
      errors: [{ code: 'MANIFEST_UNKNOWN' }],
    })
  })

  it('streams blobs whole, by single range, and refuses unsatisfiable ranges with 416', async () => {
    const file = await readFile(layer.path)
    const whole = await get(`/v2/demo/app/blobs/${layer.digest}`)
    expect(whole.status).toBe(200)
    expect(whole.headers['content-length']).toBe(String(layer.size))
    expect(whole.headers['docker-content-digest']).toBe(layer.digest)
    expect(digestOf(whole.body)).toBe(layer.digest)

    const part = await get(`/v2/demo/app/blobs/${layer.digest}`, { headers: { range: 'bytes=1000-1999' } })
    expect(part.status).toBe(206)
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${layer.size}`)
    expect(part.headers['content-length']).toBe('1000')
    expect(part.body).toEqual(file.subarray(1000, 2000))

    const suffix = await get(`/v2/demo/app/blobs/${layer.digest}`, { headers: { range: 'bytes=-100' } })
    expect(suffix.status).toBe(206)
    expect(suffix.body).toEqual(file.subarray(layer.size - 100))

    const tail = await get(`/v2/demo/app/blobs/${layer.digest}`, { headers: { range: `bytes=${layer.size - 10}-` } })
    expect(tail.body).toEqual(file.subarray(layer.size - 10))

    const beyond = await get(`/v2/demo/app/blobs/${layer.digest}`, { headers: { range: `bytes=${layer.size}-` } })
    expect(beyond.status).toBe(416)
    expect(beyond.headers['content-range']).toBe(`bytes */${layer.size}`)
    expect(beyond.json()).toMatchObject({ errors: [{ code: 'RANGE_INVALID' }] })

    const head = await get(`/v2/demo/app/blobs/${layer.digest}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(layer.size))
    expect(head.body.length).toBe(0)
  })

  it('answers unknown things and writes with OCI error bodies', async () => {
    const cases: [string, 'GET' | 'PUT' | 'POST', number, string][] = [
      [`/v2/demo/app/blobs/${ZERO_DIGEST}`, 'GET', 404, 'BLOB_UNKNOWN'],
      [`/v2/nope/blobs/${layer.digest}`, 'GET', 404, 'NAME_UNKNOWN'],
      ['/v2/demo/app/blobs/sha256:xyz', 'GET', 400, 'DIGEST_INVALID'],
      ['/v2/demo/app/manifests/v9', 'GET', 404, 'MANIFEST_UNKNOWN'],
      ['/v2/demo/app/blobs/uploads/', 'POST', 405, 'UNSUPPORTED'],
      ['/v2/demo/app/manifests/v1', 'PUT', 405, 'UNSUPPORTED'],
      ['/v2/Bad/manifests/v1', 'GET', 400, 'NAME_INVALID'],
    ]
    for (const [path, method, status, code] of cases) {
      const res = await get(path, { method, headers: method === 'GET' ? {} : { 'content-type': 'application/json' } })
      expect([path, res.status]).toEqual([path, status])
      expect(res.json()).toMatchObject({ errors: [{ code }] })
    }
    const head = await get(`/v2/demo/app/blobs/${ZERO_DIGEST}`, { method: 'HEAD' })
    expect(head.status).toBe(404)
    expect(head.body.length).toBe(0)
    expect((await get('/elsewhere')).json()).toMatchObject({ errors: [{ code: 'NAME_UNKNOWN' }] })
  })

  it('counts blob GETs and the body bytes they served, per digest', async () => {
    const config = tools.blobs[0]!
    const before = { bytes: origin.stats.blobBytesServed, requests: origin.stats.blobRequests }
    const perBefore = origin.stats.perBlob.get(config.digest)?.bytes ?? 0
    await get(`/v2/tools/blobs/${config.digest}`)
    await get(`/v2/tools/blobs/${config.digest}`, { headers: { range: 'bytes=0-9' } })
    await get(`/v2/tools/blobs/${config.digest}`, { method: 'HEAD' })
    expect(origin.stats.perBlob.get(config.digest)).toEqual({ requests: 2, bytes: perBefore + config.size + 10 })
    expect(origin.stats.blobRequests).toBe(before.requests + 2)
    expect(origin.stats.blobBytesServed).toBe(before.bytes + config.size + 10)
    // The layer test before: whole, 1000, 100, 10 bytes; HEAD and 416 counted no bytes.
    expect(origin.stats.perBlob.get(layer.digest)).toEqual({ requests: 4, bytes: layer.size + 1110 })
  })
})
