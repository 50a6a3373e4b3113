import type { FastifyPluginAsync } from 'fastify'
import {
  DEFAULT_MANIFEST_ACCEPT,
  type Digest,
  digestOf,
  isDigest,
  isRepositoryName,
  isTag,
  MAX_MANIFEST_BYTES,
  manifestMediaType,
  parseDigest,
} from '../shared/oci/index.ts'
import type { OriginClient, Upstream } from '../shared/origin/index.ts'
import type { Logger } from '../shared/log/index.ts'

export type PreheatState = 'queued' | 'running' | 'done' | 'failed'

export interface PreheatLayer {
  readonly digest: Digest
  readonly size: number
  bytes: number
}

export interface PreheatJobView {
  readonly id: string
  readonly image: string
  readonly platforms: readonly string[]
  readonly state: PreheatState
  readonly layers: readonly PreheatLayer[]
  readonly error?: string
  /** The origin's HTTP status when it refused the manifest or a blob. */
  readonly originStatus?: number
}

/** An image reference split into its parts; `registry` is undefined for the default origin. */
export interface ImageReference {
  readonly registry: string | undefined
  readonly name: string
  /** A tag or a digest. */
  readonly reference: string
}

export class InvalidPreheatRequestError extends Error {
  override name = 'InvalidPreheatRequestError'
  readonly code = 'INVALID_PREHEAT_REQUEST'
}

export class PreheatFailedError extends Error {
  override name = 'PreheatFailedError'
  readonly code = 'PREHEAT_FAILED'
  readonly status: number | undefined
  constructor(message: string, status?: number) {
    super(message)
    this.status = status
  }
}

/** The slice of Puller a preheat needs (single-flight per digest). */
export interface BlobPuller {
  start(digest: Digest, registry: string, name: string): { readonly done: Promise<void> }
}

export interface PreheaterInit {
  readonly origin: OriginClient
  readonly puller: BlobPuller
  /** Which upstream a registry means (undefined: this seeder does not pull from it). */
  readonly upstreamFor: (registry: string) => Upstream | undefined
  readonly defaultRegistry: string
  readonly log: Logger
  /** Blob pulls one job runs at once. */
  readonly concurrency?: number
  /** Finished jobs remembered for GET. */
  readonly keepFinished?: number
}

interface Job {
  readonly id: string
  readonly image: string
  readonly key: string
  readonly platforms: readonly string[]
  state: PreheatState
  layers: PreheatLayer[]
  error?: string
  originStatus?: number
}

const DEFAULT_CONCURRENCY = 4
const DEFAULT_KEEP_FINISHED = 1000

/**
 * Parses `registry/name:tag`, `registry/name@digest` or `name[:tag]`. Like docker, the first
 * component is a registry only when it holds a `.` or `:` or is `localhost`.
 */
export function parseImageReference(value: string): ImageReference {
  if (value.length === 0 || value.length > 512) throw new InvalidPreheatRequestError('image: bad length')
  let rest = value
  let reference: string
  const at = rest.indexOf('@')
  if (at >= 0) {
    reference = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!isDigest(reference)) throw new InvalidPreheatRequestError(`image: invalid digest ${JSON.stringify(reference)}`)
    // name:tag@digest pins by digest; the tag is only a label.
    const colon = rest.lastIndexOf(':')
    if (colon > rest.lastIndexOf('/')) rest = rest.slice(0, colon)
  } else {
    const colon = rest.lastIndexOf(':')
    if (colon > rest.lastIndexOf('/')) {
      reference = rest.slice(colon + 1)
      rest = rest.slice(0, colon)
    } else reference = 'latest'
    if (!isTag(reference)) throw new InvalidPreheatRequestError(`image: invalid tag ${JSON.stringify(reference)}`)
  }
  const slash = rest.indexOf('/')
  const first = slash < 0 ? '' : rest.slice(0, slash)
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')
  const registry = hasRegistry ? first.toLowerCase() : undefined
  const name = hasRegistry ? rest.slice(slash + 1) : rest
  if (!isRepositoryName(name)) throw new InvalidPreheatRequestError(`image: invalid repository name`)
  return { registry, name, reference }
}

function parsePlatforms(value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.length > 64) throw new InvalidPreheatRequestError('platforms: expected an array')
  const out: string[] = []
  for (const p of value) {
    if (typeof p !== 'string' || !/^[a-z0-9._-]+\/[a-z0-9._-]+(\/[a-z0-9._-]+)?$/i.test(p))
      throw new InvalidPreheatRequestError('platforms: expected os/arch[/variant] strings')
    out.push(p.toLowerCase())
  }
  return [...new Set(out)].sort()
}

interface Descriptor {
  readonly digest: Digest
  readonly size: number
  readonly platform?: { os?: unknown; architecture?: unknown; variant?: unknown }
}

function descriptor(value: unknown): Descriptor {
  const d = value as { digest?: unknown; size?: unknown; platform?: unknown } | null
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || !isDigest(d.digest))
    throw new PreheatFailedError('manifest holds a descriptor without a valid digest')
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0)
    throw new PreheatFailedError('manifest holds a descriptor without a valid size')
  const platform = typeof d.platform === 'object' && d.platform !== null ? d.platform : undefined
  return { digest: d.digest, size: d.size, ...(platform === undefined ? {} : { platform }) }
}

function platformMatches(p: Descriptor['platform'], wanted: string): boolean {
  if (p === undefined) return false
  const [os, arch, variant] = wanted.split('/')
  return p.os === os && p.architecture === arch && (variant === undefined || p.variant === variant)
}

/**
 * Preheat jobs: resolve an image at the origin and pull its config and layers into this seeder
 * before any agent asks, so the first node of a deployment already finds them in the swarm.
 * The puller is single-flight per digest, so overlapping jobs never fetch a blob twice.
 */
export class Preheater {
  readonly #i: PreheaterInit
  readonly #jobs = new Map<string, Job>()
  readonly #active = new Map<string, Job>()
  readonly #abort = new AbortController()
  #seq = 0

  constructor(init: PreheaterInit) {
    this.#i = init
  }

  /** Queues a preheat (or returns the queued/running one for the same reference and platforms). */
  submit(image: unknown, platforms?: unknown): { id: string; merged: boolean } {
    if (typeof image !== 'string') throw new InvalidPreheatRequestError('image: expected a string')
    const ref = parseImageReference(image)
    const wanted = parsePlatforms(platforms)
    const registry = ref.registry ?? this.#i.defaultRegistry
    const upstream = this.#i.upstreamFor(registry)
    if (upstream === undefined) throw new InvalidPreheatRequestError(`this seeder does not pull from ${registry}`)
    const sep = isDigest(ref.reference) ? '@' : ':'
    const canonical = `${upstream.registry}/${ref.name}${sep}${ref.reference}`
    const key = `${canonical} ${wanted.join(',')}`
    const running = this.#active.get(key)
    if (running !== undefined) return { id: running.id, merged: true }
    const id = `ph-${Date.now().toString(36)}-${(++this.#seq).toString(36)}`
    const job: Job = { id, image: canonical, key, platforms: wanted, state: 'queued', layers: [] }
    this.#jobs.set(id, job)
    this.#active.set(key, job)
    this.#trim()
    void this.#run(job, upstream, ref.name, ref.reference).finally(() => this.#active.delete(key))
    return { id, merged: false }
  }

  get(id: string): PreheatJobView | undefined {
    const j = this.#jobs.get(id)
    if (j === undefined) return undefined
    return {
      id: j.id,
      image: j.image,
      platforms: j.platforms,
      state: j.state,
      layers: j.layers.map((l) => ({ ...l })),
      ...(j.error === undefined ? {} : { error: j.error }),
      ...(j.originStatus === undefined ? {} : { originStatus: j.originStatus }),
    }
  }

  /** Ids of the jobs remembered, oldest first. */
  jobs(): string[] {
    return [...this.#jobs.keys()]
  }

  /** Fed by the puller's onProgress: bytes of `digest` received from the origin so far. */
  noteProgress(digest: Digest, bytes: number): void {
    for (const job of this.#active.values())
      for (const l of job.layers) if (l.digest === digest && bytes > l.bytes) l.bytes = Math.min(bytes, l.size)
  }

  close(): void {
    this.#abort.abort()
  }

  async #run(job: Job, upstream: Upstream, name: string, reference: string): Promise<void> {
    const log = this.#i.log.child({ preheat: job.id })
    try {
      job.state = 'running'
      const blobs = await this.#resolve(upstream, name, reference, job.platforms)
      job.layers = blobs.map((b) => ({ digest: b.digest, size: b.size, bytes: 0 }))
      const queue = [...job.layers]
      const worker = async () => {
        for (let l = queue.shift(); l !== undefined; l = queue.shift()) {
          this.#abort.signal.throwIfAborted()
          await this.#i.puller.start(l.digest, upstream.registry, name).done
          l.bytes = l.size
        }
      }
      const n = Math.min(this.#i.concurrency ?? DEFAULT_CONCURRENCY, queue.length)
      await Promise.all(Array.from({ length: n }, worker))
      job.state = 'done'
      log.info({ image: job.image, blobs: job.layers.length }, 'preheated image')
    } catch (err) {
      job.state = 'failed'
      job.error = err instanceof Error ? err.message : String(err)
      const status = (err as { status?: unknown }).status
      if (typeof status === 'number') job.originStatus = status
      log.warn({ image: job.image, err: job.error }, 'preheat failed')
    }
  }

  async #manifest(upstream: Upstream, name: string, reference: string): Promise<{ mediaType: string; doc: unknown }> {
    const signal = this.#abort.signal
    const res = await this.#i.origin.request(upstream, {
      method: 'GET',
      path: `${name}/manifests/${reference}`,
      headers: { accept: DEFAULT_MANIFEST_ACCEPT },
      scope: `repository:${name}:pull`,
      signal,
    })
    if (res.status !== 200) {
      res.body.destroy()
      throw new PreheatFailedError(`origin answered ${res.status} for ${name}:${reference}`, res.status)
    }
    const parts: Buffer[] = []
    let total = 0
    for await (const data of res.body) {
      const b = data as Buffer
      total += b.byteLength
      if (total > MAX_MANIFEST_BYTES) {
        res.body.destroy()
        throw new PreheatFailedError(`manifest ${name}:${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`)
      }
      parts.push(b)
    }
    const bytes = Buffer.concat(parts)
    if (isDigest(reference) && digestOf(bytes) !== reference)
      throw new PreheatFailedError(`manifest ${name}@${reference} does not match its digest`)
    const ct = res.headers['content-type']
    const mediaType = manifestMediaType(bytes, typeof ct === 'string' ? ct : undefined)
    try {
      return { mediaType, doc: JSON.parse(bytes.toString('utf8')) as unknown }
    } catch {
      throw new PreheatFailedError(`manifest ${name}:${reference} is not JSON`)
    }
  }

  /** Config and layer descriptors of the image (every chosen platform of an index), each digest once. */
  async #resolve(upstream: Upstream, name: string, reference: string, platforms: readonly string[]) {
    const root = await this.#manifest(upstream, name, reference)
    const children: unknown[] = []
    const rootManifests = (root.doc as { manifests?: unknown }).manifests
    if (Array.isArray(rootManifests)) {
      const all = rootManifests.map(descriptor)
      for (const p of platforms)
        if (!all.some((d) => platformMatches(d.platform, p)))
          throw new PreheatFailedError(`the index has no manifest for ${p}`)
      const chosen =
        platforms.length === 0 ? all : all.filter((d) => platforms.some((p) => platformMatches(d.platform, p)))
      for (const d of chosen) children.push((await this.#manifest(upstream, name, d.digest)).doc)
    } else children.push(root.doc)
    const blobs = new Map<Digest, Descriptor>()
    for (const m of children) {
      const { config, layers } = m as { config?: unknown; layers?: unknown }
      if (config === undefined || !Array.isArray(layers)) throw new PreheatFailedError('not an image manifest')
      for (const d of [descriptor(config), ...layers.map(descriptor)]) blobs.set(parseDigest(d.digest), d)
    }
    return [...blobs.values()]
  }

  #trim(): void {
    const max = this.#i.keepFinished ?? DEFAULT_KEEP_FINISHED
    for (const [id, j] of this.#jobs) {
      if (this.#jobs.size <= max) break
      if (j.state === 'done' || j.state === 'failed') this.#jobs.delete(id)
    }
  }
}

export const PREHEAT_BODY_LIMIT_BYTES = 64 * 1024

/** `POST /api/v1/preheat` and `GET /api/v1/preheat/:id` on the seeder's API. */
export function preheatRoutes(preheater: Preheater): FastifyPluginAsync {
  return async (api) => {
    api.post('/api/v1/preheat', { bodyLimit: PREHEAT_BODY_LIMIT_BYTES }, async (req, reply) => {
      const body = req.body as { image?: unknown; platforms?: unknown } | null | undefined
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        return reply.code(400).send({ error: 'expected a JSON object { image, platforms? }' })
      try {
        const { id, merged } = preheater.submit(body.image, body.platforms)
        return reply.code(202).send({ id, merged })
      } catch (err) {
        if (err instanceof InvalidPreheatRequestError) return reply.code(400).send({ error: err.message })
        throw err
      }
    })
    api.get<{ Params: { id: string } }>('/api/v1/preheat/:id', async (req, reply) => {
      const job = preheater.get(req.params.id)
      if (job === undefined) return reply.code(404).send({ error: 'no such preheat job' })
      return job
    })
  }
}
