import { createReadStream } from 'node:fs'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { type Digest, parseRange, parseV2Path, RegistryError } from '../oci/index.ts'
import type { SampleBlob, SampleImage, SampleManifest } from './index.ts'

/** Origin egress, as the demo's summary reports it: blob GETs and the body bytes they streamed. */
export interface DemoOriginStats {
  blobBytesServed: number
  blobRequests: number
  readonly perBlob: Map<string, { requests: number; bytes: number }>
  /** Every manifest request answered 200, in order: HEADs (no body) and GETs (bytes = body bytes sent). */
  readonly manifestRequests: { readonly method: 'GET' | 'HEAD'; readonly reference: string; readonly bytes: number }[]
}

export interface DemoOrigin {
  readonly url: string
  readonly stats: DemoOriginStats
  stop(): Promise<void>
}

export interface DemoOriginOptions {
  images: readonly { name: string; tag: string; image: SampleImage }[]
  host?: string
  port?: number
}

interface Repo {
  readonly tags: Map<string, SampleManifest>
  readonly manifests: Map<string, SampleManifest>
  readonly blobs: Map<string, SampleBlob>
}

const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' }

function indexRepos(images: DemoOriginOptions['images']): Map<string, Repo> {
  const repos = new Map<string, Repo>()
  for (const { name, tag, image } of images) {
    let repo = repos.get(name)
    if (repo === undefined) {
      repo = { tags: new Map(), manifests: new Map(), blobs: new Map() }
      repos.set(name, repo)
    }
    repo.tags.set(tag, image.root)
    for (const m of image.manifests) repo.manifests.set(m.digest, m)
    for (const b of image.blobs) repo.blobs.set(b.digest, b)
  }
  return repos
}

/** A read-only `/v2/` registry serving sample images, for the offline demo. Not the product. */
export async function startDemoOrigin(opts: DemoOriginOptions): Promise<DemoOrigin> {
  const repos = indexRepos(opts.images)
  const stats: DemoOriginStats = { blobBytesServed: 0, blobRequests: 0, perBlob: new Map(), manifestRequests: [] }

  function repoOf(name: string): Repo {
    const repo = repos.get(name)
    if (repo === undefined) throw new RegistryError('NAME_UNKNOWN', 'repository name not known to registry')
    return repo
  }

  function sendManifest(reply: FastifyReply, m: SampleManifest, head: boolean, reference: string): FastifyReply {
    stats.manifestRequests.push({ method: head ? 'HEAD' : 'GET', reference, bytes: head ? 0 : m.bytes.byteLength })
    reply.headers({
      'content-type': m.mediaType,
      'content-length': String(m.bytes.byteLength),
      'docker-content-digest': m.digest,
    })
    return head ? reply.send() : reply.send(Buffer.from(m.bytes))
  }

  function sendBlob(req: FastifyRequest, reply: FastifyReply, blob: SampleBlob, head: boolean): FastifyReply {
    const range = parseRange(req.headers.range, blob.size)
    if (range.kind === 'unsatisfiable') {
      throw new RegistryError('RANGE_INVALID', 'requested range not satisfiable', {
        headers: { 'content-range': `bytes */${blob.size}` },
      })
    }
    const start = range.kind === 'range' ? range.range.start : 0
    const end = range.kind === 'range' ? range.range.end : blob.size - 1
    reply.headers({
      'content-type': 'application/octet-stream',
      'content-length': String(end - start + 1),
      'docker-content-digest': blob.digest,
      'accept-ranges': 'bytes',
      etag: `"${blob.digest}"`,
    })
    if (range.kind === 'range') reply.code(206).header('content-range', `bytes ${start}-${end}/${blob.size}`)
    if (head) return reply.send()
    const counts = stats.perBlob.get(blob.digest) ?? { requests: 0, bytes: 0 }
    stats.perBlob.set(blob.digest, counts)
    counts.requests++
    stats.blobRequests++
    if (end < start) return reply.send(Buffer.alloc(0)) // empty blob: createReadStream has no empty range
    const stream = createReadStream(blob.path, { start, end })
    stream.on('data', (chunk) => {
      counts.bytes += chunk.length
      stats.blobBytesServed += chunk.length
    })
    return reply.send(stream)
  }

  async function handle(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    reply.headers(API_VERSION)
    const head = req.method === 'HEAD'
    if (req.method !== 'GET' && !head) throw new RegistryError('UNSUPPORTED', 'this demo registry is read-only')
    const route = parseV2Path(req.raw.url?.split('?')[0] ?? '')
    switch (route.kind) {
      case 'base':
        return reply.type('application/json').send({})
      case 'catalog':
        return reply.send({ repositories: [...repos.keys()].sort() })
      case 'tags':
        return reply.send({ name: route.name, tags: [...repoOf(route.name).tags.keys()].sort() })
      case 'manifest': {
        const repo = repoOf(route.name)
        const ref = route.reference
        const m = ref.kind === 'tag' ? repo.tags.get(ref.tag) : repo.manifests.get(ref.digest)
        if (m === undefined) throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown')
        return sendManifest(reply, m, head, ref.kind === 'tag' ? ref.tag : ref.digest)
      }
      case 'blob': {
        const blob = repoOf(route.name).blobs.get(route.digest satisfies Digest)
        if (blob === undefined) throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry')
        return sendBlob(req, reply, blob, head)
      }
      case 'upload':
        throw new RegistryError('UNSUPPORTED', 'this demo registry is read-only')
      case 'referrers':
        throw new RegistryError('NAME_UNKNOWN', 'referrers are not served here', { status: 404 })
    }
  }

  const app = Fastify({ logger: false })
  // Never parse request bodies: every write is refused anyway.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined))
  app.setErrorHandler((err, req, reply) => {
    const e = err instanceof RegistryError ? err : new RegistryError('UNAVAILABLE', 'internal error', { status: 500 })
    reply.code(e.status).headers({ ...API_VERSION, ...e.headers })
    return req.method === 'HEAD' ? reply.send() : reply.type('application/json').send(e.toBody())
  })
  app.setNotFoundHandler((req, reply) => {
    const e = new RegistryError('NAME_UNKNOWN', 'not found', { status: 404 })
    return reply
      .code(404)
      .headers(API_VERSION)
      .type('application/json')
      .send(req.method === 'HEAD' ? '' : e.toBody())
  })
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
  app.route({ method: methods, url: '/v2', exposeHeadRoute: false, handler: handle })
  app.route({ method: methods, url: '/v2/*', exposeHeadRoute: false, handler: handle })

  await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 })
  const addr = app.server.address() as AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  return { url: `http://${host}:${addr.port}`, stats, stop: () => app.close() }
}
