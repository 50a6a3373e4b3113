import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { digestOf } from '../../../shared/oci/index.ts'
import { generateSampleImage, pushSampleImage, type SampleImage } from '../../../shared/sample/index.ts'
import { parseChallenge } from '../../../shared/sample/push-auth.ts'

type AuthMode = 'none' | 'basic' | 'bearer'

interface Receiver {
  readonly url: string
  readonly log: string[]
  readonly blobs: Map<string, Buffer>
  readonly manifests: Map<string, { type: string; bytes: Buffer }>
  readonly tokenRequests: { scope: string | undefined; authorized: boolean }[]
  close(): Promise<void>
}

const USER = 'alice'
const PASS = 's3cret'
const BASIC = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`

/** Just enough of a registry's write side to check what a pusher sends, and in which order. */
async function startReceiver(auth: AuthMode): Promise<Receiver> {
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  const log: string[] = []
  const blobs = new Map<string, Buffer>()
  const manifests = new Map<string, { type: string; bytes: Buffer }>()
  const uploads = new Map<string, Buffer[]>()
  const tokenRequests: Receiver['tokenRequests'] = []
  const tokens = new Map<string, string>() // token -> scope
  let url = ''

  const oci = (reply: FastifyReply, status: number, code: string) =>
    reply.code(status).send({ errors: [{ code, message: code.toLowerCase() }] })

  app.get('/token', async (req: FastifyRequest<{ Querystring: { scope?: string; service?: string } }>, reply) => {
    const authorized = req.headers.authorization === BASIC
    tokenRequests.push({ scope: req.query.scope, authorized })
    if (!authorized || req.query.service !== 'test-registry') return reply.code(401).send({})
    const token = randomBytes(12).toString('hex')
    tokens.set(token, req.query.scope ?? '')
    return reply.send({ access_token: token })
  })

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/v2/')) return
    log.push(
      `${req.method} ${req.url.replace(/\?.*/, '')}${req.headers['content-range'] ? ` ${req.headers['content-range']}` : ''}`,
    )
    const h = req.headers.authorization
    if (auth === 'basic' && h !== BASIC) {
      reply.header('www-authenticate', 'Basic realm="test"')
      return oci(reply, 401, 'UNAUTHORIZED')
    }
    const scope = h?.startsWith('Bearer ') ? tokens.get(h.slice(7)) : undefined
    if (auth === 'bearer' && (scope === undefined || (req.method !== 'HEAD' && !scope.endsWith(',push')))) {
      const want = req.method === 'HEAD' ? 'pull' : 'pull,push'
      reply.header(
        'www-authenticate',
        `Bearer realm="${url}/token",service="test-registry",scope="repository:team/app:${want}"`,
      )
      return oci(reply, 401, 'UNAUTHORIZED')
    }
  })

  app.head('/v2/team/app/blobs/:digest', async (req: FastifyRequest<{ Params: { digest: string } }>, reply) => {
    const b = blobs.get(req.params.digest)
    return b === undefined ? reply.code(404).send() : reply.header('content-length', b.length).send()
  })
  app.post('/v2/team/app/blobs/uploads/', async (_req, reply) => {
    const id = randomBytes(8).toString('hex')
    uploads.set(id, [])
    // A relative Location with state in its query, as distribution sends.
    return reply.code(202).header('location', `/v2/team/app/blobs/uploads/${id}?_state=${id}`).send()
  })
  type UploadReq = FastifyRequest<{ Params: { id: string }; Querystring: { _state?: string; digest?: string } }>
  app.patch('/v2/team/app/blobs/uploads/:id', async (req: UploadReq, reply) => {
    const parts = uploads.get(req.params.id)
    if (parts === undefined || req.query._state !== req.params.id) return oci(reply, 404, 'BLOB_UPLOAD_UNKNOWN')
    const have = parts.reduce((n, p) => n + p.length, 0)
    const body = req.body as Buffer
    if (req.headers['content-range'] !== `${have}-${have + body.length - 1}`) return oci(reply, 416, 'RANGE_INVALID')
    parts.push(body)
    // An absolute Location this time: a pusher must take either form.
    return reply
      .code(202)
      .header('location', `${url}/v2/team/app/blobs/uploads/${req.params.id}?_state=${req.params.id}`)
      .header('range', `0-${have + body.length - 1}`)
      .send()
  })
  app.put('/v2/team/app/blobs/uploads/:id', async (req: UploadReq, reply) => {
    const parts = uploads.get(req.params.id)
    if (parts === undefined || req.query._state !== req.params.id) return oci(reply, 404, 'BLOB_UPLOAD_UNKNOWN')
    if (req.body !== undefined) parts.push(req.body as Buffer)
    const bytes = Buffer.concat(parts)
    if (digestOf(bytes) !== req.query.digest) return oci(reply, 400, 'DIGEST_INVALID')
    blobs.set(req.query.digest, bytes)
    uploads.delete(req.params.id)
    return reply.code(201).header('docker-content-digest', req.query.digest).send()
  })
  app.put('/v2/team/app/manifests/:ref', async (req: FastifyRequest<{ Params: { ref: string } }>, reply) => {
    const bytes = req.body as Buffer
    const digest = digestOf(bytes)
    if (req.params.ref.includes(':') && req.params.ref !== digest) return oci(reply, 400, 'DIGEST_INVALID')
    const doc = JSON.parse(bytes.toString()) as { config?: { digest: string }; layers?: { digest: string }[] }
    const children = (doc as { manifests?: { digest: string }[] }).manifests
    if (children?.some((c) => !manifests.has(c.digest))) return oci(reply, 400, 'MANIFEST_BLOB_UNKNOWN')
    if ([doc.config, ...(doc.layers ?? [])].some((d) => d !== undefined && !blobs.has(d.digest))) {
      return oci(reply, 400, 'MANIFEST_BLOB_UNKNOWN')
    }
    const entry = { type: req.headers['content-type'] ?? '', bytes }
    manifests.set(digest, entry)
    manifests.set(req.params.ref, entry)
    return reply.code(201).header('docker-content-digest', digest).send()
  })

  await app.listen({ host: '127.0.0.1', port: 0 })
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  return { url, log, blobs, manifests, tokenRequests, close: () => app.close() }
}

describe('pushSampleImage', () => {
  let dir: string
  let image: SampleImage
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-push-'))
    image = await generateSampleImage({
      dir,
      layers: 2,
      layerBytes: [3000, 300_000],
      platforms: ['linux/amd64', 'linux/arm64'],
      seed: 'push',
    })
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function expectStored(r: Receiver, img: SampleImage, tag: string): Promise<void> {
    for (const b of img.blobs) expect(digestOf(r.blobs.get(b.digest)!)).toBe(b.digest)
    for (const m of img.manifests) {
      expect(r.manifests.get(m.digest)).toEqual({ type: m.mediaType, bytes: Buffer.from(m.bytes) })
    }
    expect(r.manifests.get(tag)?.bytes).toEqual(Buffer.from(img.root.bytes))
  }

  it('uploads small blobs in one streamed PUT, big ones in chunked PATCHes, then manifests children first', async () => {
    const r = await startReceiver('none')
    try {
      await pushSampleImage(r.url, 'team/app', 'v1', image, { chunkBytes: 128 * 1024 })
      await expectStored(r, image, 'v1')
      const big = image.blobs.find((b) => b.size > 300_000)!
      const patches = r.log.filter((l) => l.startsWith('PATCH'))
      // Two big layers (one per platform), three chunks each: 128 KiB, 128 KiB, the rest.
      expect(patches).toHaveLength(6)
      expect(patches.slice(0, 3).map((l) => l.split(' ')[2])).toEqual([
        '0-131071',
        '131072-262143',
        `262144-${big.size - 1}`,
      ])
      expect(r.log.filter((l) => l.startsWith('POST'))).toHaveLength(image.blobs.length)
      const puts = r.log.filter((l) => l.startsWith('PUT /v2/team/app/manifests/'))
      expect(puts.map((l) => l.split('/').pop())).toEqual([
        image.manifests[0]!.digest,
        image.manifests[1]!.digest,
        'v1',
      ])

      // Pushing again uploads nothing: every blob answers its HEAD.
      r.log.length = 0
      await pushSampleImage(`${r.url}/`, 'team/app', 'v2', image)
      expect(r.log.filter((l) => l.startsWith('POST') || l.startsWith('PATCH'))).toEqual([])
      expect(r.manifests.get('v2')?.bytes).toEqual(Buffer.from(image.root.bytes))
    } finally {
      await r.close()
    }
  })

  it('answers a Basic challenge with the given credentials', async () => {
    const r = await startReceiver('basic')
    try {
      await pushSampleImage(r.url, 'team/app', 'latest', image, { username: USER, password: PASS })
      await expectStored(r, image, 'latest')
      await expect(
        pushSampleImage(r.url, 'team/app', 'latest', image, { username: USER, password: 'wrong' }),
      ).rejects.toMatchObject({ name: 'SamplePushError', code: 'SAMPLE_PUSH_FAILED', status: 401 })
      await expect(pushSampleImage(r.url, 'team/app', 'latest', image)).rejects.toMatchObject({
        name: 'SamplePushError',
        status: 401,
      })
    } finally {
      await r.close()
    }
  })

  it('follows the Bearer token flow, asking the realm for each challenged scope with Basic credentials', async () => {
    const r = await startReceiver('bearer')
    try {
      await pushSampleImage(r.url, 'team/app', 'v1', image, { username: USER, password: PASS, chunkBytes: 100_000 })
      await expectStored(r, image, 'v1')
      expect(r.tokenRequests).toEqual([
        { scope: 'repository:team/app:pull', authorized: true },
        { scope: 'repository:team/app:pull,push', authorized: true },
      ])
      await expect(
        pushSampleImage(r.url, 'team/app', 'v1', image, { username: USER, password: 'nope' }),
      ).rejects.toMatchObject({ name: 'SamplePushError', status: 401 })
    } finally {
      await r.close()
    }
  })

  it('reports the registry error code when a push is refused', async () => {
    const r = await startReceiver('none')
    try {
      // Manifests only: the receiver refuses a manifest whose blobs it lacks.
      const noBlobs: SampleImage = { ...image, blobs: [] }
      await expect(pushSampleImage(r.url, 'team/app', 'v1', noBlobs)).rejects.toMatchObject({
        name: 'SamplePushError',
        status: 400,
        ociCode: 'MANIFEST_BLOB_UNKNOWN',
      })
      const ac = new AbortController()
      ac.abort()
      await expect(pushSampleImage(r.url, 'team/app', 'v1', image, { signal: ac.signal })).rejects.toMatchObject({
        name: 'AbortError',
      })
    } finally {
      await r.close()
    }
  })

  it('parses WWW-Authenticate challenges', () => {
    expect(
      parseChallenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"'),
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'reg', scope: 'repository:a/b:pull' },
    })
    expect(parseChallenge('Basic realm=Registry')).toEqual({ scheme: 'basic', params: { realm: 'Registry' } })
    expect(parseChallenge('Bearer realm="a\\"b", error="insufficient_scope"')?.params).toEqual({
      realm: 'a"b',
      error: 'insufficient_scope',
    })
  })
})
