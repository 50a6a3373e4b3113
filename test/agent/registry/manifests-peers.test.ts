/**
 * ManifestService with manifest sharing on: the origin answers a HEAD (tag resolution and authorization), the body
 * comes from peers, verified against the digest the origin gave; anything else is the origin GET as before. A stub
 * origin records every request, so each test says exactly what the origin was asked.
 */
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { Authorizer } from '../../../agent/authz.ts'
import type { OriginPort } from '../../../agent/origin-port.ts'
import { ManifestService } from '../../../agent/registry/manifests.ts'
import { createLogger } from '../../../shared/log/index.ts'
import { createMetrics } from '../../../shared/metrics/index.ts'
import { type Digest, digestOf, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../../shared/oci/index.ts'
import type { OriginRequest, OriginResponse, Upstream } from '../../../shared/origin/index.ts'
import { MemoryManifestCache } from '../../../shared/store/index.ts'

const upstream: Upstream = { registry: 'origin.test', baseUrl: new URL('http://origin.test') }
const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }))
const digest = digestOf(body)

interface Seen {
  readonly method: string
  readonly path: string
}

/** An origin holding one manifest under tag `v1`; `head` overrides what a HEAD answers. */
function stubOrigin(head?: (req: OriginRequest) => OriginResponse): { origin: OriginPort; seen: Seen[] } {
  const seen: Seen[] = []
  const origin: OriginPort = {
    async request(_u: Upstream, req: OriginRequest): Promise<OriginResponse> {
      seen.push({ method: req.method, path: req.path })
      if (req.method === 'HEAD' && head !== undefined) return head(req)
      const ok = req.path === 'demo/app/manifests/v1' || req.path === `demo/app/manifests/${digest}`
      const headers = ok
        ? { 'content-type': OCI_MANIFEST, 'docker-content-digest': digest, 'content-length': String(body.length) }
        : { 'content-type': 'application/json' }
      return {
        status: ok ? 200 : 404,
        headers,
        body: Readable.from(req.method === 'HEAD' || !ok ? [] : [body]),
      } as unknown as OriginResponse
    },
  }
  return { origin, seen }
}

function service(origin: OriginPort, peers: ConstructorParameters<typeof ManifestService>[0]['peers']) {
  const cache = new MemoryManifestCache()
  const authorizer = new Authorizer({ origin, ttlMs: 60_000, staleTtlMs: 60_000, isPublic: () => false })
  const svc = new ManifestService({
    origin,
    cache,
    authorizer,
    metrics: createMetrics(),
    log: createLogger({ level: 'silent' }),
    tagTtlMs: 0,
    ...(peers === undefined ? {} : { peers }),
  })
  return { svc, cache }
}

const get = (reference: { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest }, accept?: string) => ({
  method: 'GET' as const,
  upstream,
  name: 'demo/app',
  reference: reference as never,
  accept,
  authorization: 'Bearer client-token',
  signal: new AbortController().signal,
})

describe('a manifest miss with manifest sharing on', () => {
  it('HEADs the origin and takes the body from a peer: no GET reaches the origin, the tag and body are cached', async () => {
    const { origin, seen } = stubOrigin()
    const asked: Digest[] = []
    const { svc, cache } = service(origin, {
      get: async (d) => (asked.push(d), { mediaType: OCI_MANIFEST, bytes: Uint8Array.from(body) }),
    })
    const r = await svc.serve(get({ kind: 'tag', tag: 'v1' }))
    expect(r.status).toBe(200)
    expect(Buffer.from(r.body!).equals(body)).toBe(true)
    expect(r.headers['docker-content-digest']).toBe(digest)
    expect(seen).toEqual([{ method: 'HEAD', path: 'demo/app/manifests/v1' }])
    expect(asked).toEqual([digest])
    expect((await cache.getManifest(digest))?.mediaType).toBe(OCI_MANIFEST)
    expect((await cache.getTag('origin.test/demo/app:v1'))?.digest).toBe(digest)
  })

  it('a request by digest: HEAD at the origin (the authorization), body from a peer', async () => {
    const { origin, seen } = stubOrigin()
    const { svc } = service(origin, { get: async () => ({ mediaType: OCI_MANIFEST, bytes: Uint8Array.from(body) }) })
    const r = await svc.serve(get({ kind: 'digest', digest }))
    expect(Buffer.from(r.body!).equals(body)).toBe(true)
    expect(seen).toEqual([{ method: 'HEAD', path: `demo/app/manifests/${digest}` }])
  })

  it('never uses bytes that do not hash to the digest the origin gave: it GETs that digest from the origin', async () => {
    const { origin, seen } = stubOrigin()
    const wrong = Buffer.from('{"schemaVersion":2,"layers":["evil"]}')
    const { svc, cache } = service(origin, { get: async () => ({ mediaType: OCI_MANIFEST, bytes: wrong }) })
    const r = await svc.serve(get({ kind: 'tag', tag: 'v1' }))
    expect(Buffer.from(r.body!).equals(body)).toBe(true)
    expect(seen).toEqual([
      { method: 'HEAD', path: 'demo/app/manifests/v1' },
      { method: 'GET', path: `demo/app/manifests/${digest}` },
    ])
    expect(Buffer.from((await cache.getManifest(digest))!.bytes).equals(body)).toBe(true)
  })

  it('no peer has it, or the peers fail: the origin GET by the digest the HEAD gave', async () => {
    for (const peers of [{ get: async () => undefined }, { get: () => Promise.reject(new Error('dial failed')) }]) {
      const { origin, seen } = stubOrigin()
      const { svc } = service(origin, peers)
      const r = await svc.serve(get({ kind: 'tag', tag: 'v1' }))
      expect(Buffer.from(r.body!).equals(body)).toBe(true)
      expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
        'HEAD demo/app/manifests/v1',
        `GET demo/app/manifests/${digest}`,
      ])
    }
  })

  it('a HEAD without Docker-Content-Digest, or with a media type the client does not take: the GET as before', async () => {
    const heads: ((req: OriginRequest) => OriginResponse)[] = [
      () => ({ status: 200, headers: { 'content-type': OCI_MANIFEST }, body: Readable.from([]) }) as never,
      () =>
        ({
          status: 200,
          headers: { 'content-type': OCI_INDEX, 'docker-content-digest': digest },
          body: Readable.from([]),
        }) as never,
    ]
    for (const head of heads) {
      const { origin, seen } = stubOrigin(head)
      let asked = 0
      const { svc } = service(origin, { get: async () => (asked++, undefined) })
      const r = await svc.serve(get({ kind: 'tag', tag: 'v1' }, `${OCI_MANIFEST}, ${DOCKER_MANIFEST}`))
      expect(Buffer.from(r.body!).equals(body)).toBe(true)
      expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
        'HEAD demo/app/manifests/v1',
        'GET demo/app/manifests/v1',
      ])
      expect(asked).toBe(0)
    }
  })

  it('a HEAD the origin refuses: the GET, whose refusal the client gets, and no peer is asked', async () => {
    const { origin, seen } = stubOrigin(() => ({ status: 401, headers: {}, body: Readable.from([]) }) as never)
    let asked = 0
    const { svc } = service(origin, { get: async () => (asked++, undefined) })
    await expect(svc.serve(get({ kind: 'tag', tag: 'nope' }))).rejects.toMatchObject({ status: 404 })
    expect(seen.map((s) => s.method)).toEqual(['HEAD', 'GET'])
    expect(asked).toBe(0)
  })

  it('without sharing (no p2p) a miss is one origin GET, as before', async () => {
    const { origin, seen } = stubOrigin()
    const { svc } = service(origin, undefined)
    await svc.serve(get({ kind: 'tag', tag: 'v1' }))
    expect(seen).toEqual([{ method: 'GET', path: 'demo/app/manifests/v1' }])
  })
})
