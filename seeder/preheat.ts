import { createHash, randomBytes } from 'node:crypto'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Digest } from '../shared/oci/index.ts'
import { isDigest } from '../shared/oci/index.ts'
import type { OriginClient, Upstream } from '../shared/origin/index.ts'
import type { Logger } from '../shared/log/index.ts'
import {
  authorizationOf,
  checkBlobReadable,
  InvalidPreheatRequestError,
  normalizePlatforms,
  parseImageReference,
  type ResolveOptions,
  resolveImageBlobs,
} from './preheat-image.ts'
import {
  MAX_PREFETCH_AGENTS,
  MAX_PREHEAT_SITES,
  PREHEAT_BODY_SCHEMA,
  type PreheatCredentials,
  type PreheatRequest,
  type PreheatScope,
  schemaErrorReason,
  SITE_NAME_PATTERN,
} from './schemas.ts'

export {
  type ImageReference,
  InvalidPreheatRequestError,
  parseImageReference,
  PreheatFailedError,
} from './preheat-image.ts'

export type PreheatState = 'queued' | 'running' | 'done' | 'failed'

export interface PreheatLayer {
  readonly digest: Digest
  readonly size: number
  bytes: number
  /** Peer id of the seeder that owns the blob (rendezvous) when it is not this one. */
  seeder?: string
}

/** Agents asked to prefetch the image's blobs through the swarm, and how far they got. */
export interface PrefetchReport {
  readonly asked: number
  readonly accepted: number
  /** Agents holding every blob. */
  readonly complete: number
  readonly errors: readonly string[]
  /** Per site of `scope.sites`: agents of that site that accepted to hold the image, and those that hold it all. */
  readonly sites?: Readonly<Record<string, SiteCopies>>
}

export interface SiteCopies {
  readonly wanted: number
  readonly accepted: number
  readonly complete: number
}

export interface PreheatJobView {
  readonly id: string
  readonly image: string
  readonly platforms: readonly string[]
  readonly state: PreheatState
  readonly layers: readonly PreheatLayer[]
  /** Agents asked to prefetch (0: seeders only), and copies wanted per site (absent: none). */
  readonly scope: { readonly agents: number; readonly sites?: Readonly<Record<string, number>> }
  readonly agents?: PrefetchReport
  readonly error?: string
  /** The origin's HTTP status when it refused the manifest or a blob. */
  readonly originStatus?: number
}

/** The slice of Puller a preheat needs (single-flight per digest). */
export interface BlobPuller {
  start(
    digest: Digest,
    registry: string,
    name: string,
    opts?: { authorization?: string },
  ): { readonly done: Promise<void> }
}

/** Another seeder, owner of some blobs by rendezvous hashing: it pulls them, this one only waits. */
export interface RemoteSeeder {
  readonly id: string
  /** Asks it to pull `digest` and resolves once it holds the whole blob; `onBytes` reports its progress. */
  seed(
    digest: Digest,
    registry: string,
    name: string,
    onBytes: (bytes: number) => void,
    signal: AbortSignal,
  ): Promise<void>
}

export interface PrefetchRequest {
  readonly registry: string
  readonly name: string
  readonly blobs: readonly { readonly digest: Digest; readonly size: number }[]
  readonly agents: number
  /** Site → agents of that site to hold the blobs (pinned for their --preheat-ttl); sites with 0 left out. */
  readonly sites: Readonly<Record<string, number>>
}

export interface PreheaterInit {
  readonly origin: OriginClient
  readonly puller: BlobPuller
  /** Which upstream a registry means (undefined: this seeder does not pull from it). */
  readonly upstreamFor: (registry: string) => Upstream | undefined
  readonly defaultRegistry: string
  readonly log: Logger
  /** The seeder owning a blob when it is another one (undefined: this one pulls it). */
  readonly owner?: (digest: Digest) => RemoteSeeder | undefined
  /** Called when a blob of a job is held here (retention starts its clock). */
  readonly onSeeded?: (digest: Digest) => void
  /** Asks agents to prefetch; absent: scope.agents and scope.sites are refused. */
  readonly prefetch?: (
    req: PrefetchRequest,
    onReport: (r: PrefetchReport) => void,
    signal: AbortSignal,
  ) => Promise<PrefetchReport>
  /** Blob pulls one job runs at once. */
  readonly concurrency?: number
  /** Finished jobs remembered for GET. */
  readonly keepFinished?: number
  /** Keeps the manifests a job resolves, verified, for agents to fetch by digest from this seeder. */
  readonly manifests?: ResolveOptions['manifests']
}

export { MAX_PREFETCH_AGENTS, type PreheatCredentials, type PreheatRequest, type PreheatScope } from './schemas.ts'

interface Job {
  readonly id: string
  readonly image: string
  readonly key: string
  readonly platforms: readonly string[]
  readonly agents: number
  /** Copies per site, the zero counts left out. */
  readonly sites: Readonly<Record<string, number>>
  /** Never shown nor logged: the Authorization the job's origin fetches send. */
  readonly authorization: string | undefined
  state: PreheatState
  layers: PreheatLayer[]
  report?: PrefetchReport
  error?: string
  originStatus?: number
}

const SITE_NAME = new RegExp(SITE_NAME_PATTERN)

/**
 * `scope.sites` checked (the API's schema already did; this is for every other caller) and made canonical:
 * sorted by name, zero counts dropped, so two jobs asking the same thing merge.
 */
export function siteScope(sites: PreheatScope['sites']): Readonly<Record<string, number>> {
  if (sites === undefined) return {}
  const entries = Object.entries(sites)
  if (entries.length > MAX_PREHEAT_SITES)
    throw new InvalidPreheatRequestError(`scope.sites: at most ${MAX_PREHEAT_SITES} sites`)
  for (const [site, n] of entries) {
    if (!SITE_NAME.test(site))
      throw new InvalidPreheatRequestError(`scope.sites: ${JSON.stringify(site)} is not a site name`)
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_PREFETCH_AGENTS)
      throw new InvalidPreheatRequestError(`scope.sites.${site}: expected an integer 0..${MAX_PREFETCH_AGENTS}`)
  }
  return Object.freeze(
    Object.fromEntries(entries.filter(([, n]) => n > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  )
}

const DEFAULT_CONCURRENCY = 4
const DEFAULT_KEEP_FINISHED = 1000
// Job keys name a credential without holding it; the salt makes the hash useless outside this process.
const KEY_SALT = randomBytes(16)

/**
 * Preheat jobs: resolve an image at the origin and pull its config and layers into the seeders
 * before any agent asks, so the first node of a deployment already finds them in the swarm.
 * The puller is single-flight per digest, so overlapping jobs never fetch a blob twice; a blob
 * owned by another seeder (rendezvous) is pulled there, so several seeders notified of the same
 * push still fetch each blob once.
 *
 * Credentials given with a job are used for that job's origin requests only. Jobs are merged only
 * when their credentials are the same; a job that finds a blob already pulled (by another job, or
 * for the swarm) still proves with a HEAD that its own credentials may read it.
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

  /** Queues a preheat (or returns the queued/running one for the same image, platforms, scope and credentials). */
  submit(
    image: string,
    platforms: readonly string[] = [],
    opts: { credentials?: PreheatCredentials; scope?: PreheatScope } = {},
  ): {
    id: string
    merged: boolean
  } {
    const ref = parseImageReference(image)
    const wanted = normalizePlatforms(platforms)
    const authorization = opts.credentials === undefined ? undefined : authorizationOf(opts.credentials)
    const agents = opts.scope?.agents ?? 0
    if (!Number.isSafeInteger(agents) || agents < 0 || agents > MAX_PREFETCH_AGENTS)
      throw new InvalidPreheatRequestError(`scope.agents: expected an integer 0..${MAX_PREFETCH_AGENTS}`)
    if (agents > 0 && this.#i.prefetch === undefined)
      throw new InvalidPreheatRequestError('scope.agents: this seeder cannot ask agents to prefetch')
    const sites = siteScope(opts.scope?.sites)
    if (Object.keys(sites).length > 0 && this.#i.prefetch === undefined)
      throw new InvalidPreheatRequestError('scope.sites: this seeder cannot ask agents to prefetch')
    const registry = ref.registry ?? this.#i.defaultRegistry
    const upstream = this.#i.upstreamFor(registry)
    if (upstream === undefined) throw new InvalidPreheatRequestError(`this seeder does not pull from ${registry}`)
    const sep = isDigest(ref.reference) ? '@' : ':'
    const canonical = `${upstream.registry}/${ref.name}${sep}${ref.reference}`
    const who =
      authorization === undefined ? '-' : createHash('sha256').update(KEY_SALT).update(authorization).digest('hex')
    const key = `${canonical} ${wanted.join(',')} ${agents} ${JSON.stringify(sites)} ${who}`
    const running = this.#active.get(key)
    if (running !== undefined) return { id: running.id, merged: true }
    const id = `ph-${Date.now().toString(36)}-${(++this.#seq).toString(36)}-${randomBytes(4).toString('hex')}`
    const job: Job = {
      id,
      image: canonical,
      key,
      platforms: wanted,
      agents,
      sites,
      authorization,
      state: 'queued',
      layers: [],
    }
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
      scope: { agents: j.agents, ...(Object.keys(j.sites).length === 0 ? {} : { sites: { ...j.sites } }) },
      ...(j.report === undefined ? {} : { agents: { ...j.report, errors: [...j.report.errors] } }),
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

  /** Aborts every job under way; none starts after. */
  async stop(): Promise<void> {
    this.#abort.abort()
  }

  async #run(job: Job, upstream: Upstream, name: string, reference: string): Promise<void> {
    const log = this.#i.log.child({ preheat: job.id })
    const signal = this.#abort.signal
    const auth = job.authorization === undefined ? {} : { authorization: job.authorization }
    try {
      job.state = 'running'
      const blobs = await resolveImageBlobs({
        origin: this.#i.origin,
        upstream,
        name,
        reference,
        platforms: job.platforms,
        signal,
        ...auth,
        ...(this.#i.manifests === undefined ? {} : { manifests: this.#i.manifests }),
      })
      job.layers = blobs.map((b) => ({ digest: b.digest, size: b.size, bytes: 0 }))
      const queue = [...job.layers]
      const worker = async () => {
        for (let l = queue.shift(); l !== undefined; l = queue.shift()) {
          signal.throwIfAborted()
          await this.#seed(job, l, upstream, name, signal)
          l.bytes = l.size
        }
      }
      const n = Math.min(this.#i.concurrency ?? DEFAULT_CONCURRENCY, queue.length)
      await Promise.all(Array.from({ length: n }, worker))
      if ((job.agents > 0 || Object.keys(job.sites).length > 0) && this.#i.prefetch !== undefined) {
        const req = {
          registry: upstream.registry,
          name,
          blobs: job.layers.map((l) => ({ ...l })),
          agents: job.agents,
          sites: job.sites,
        }
        job.report = await this.#i.prefetch(req, (r) => (job.report = r), signal)
      }
      job.state = 'done'
      log.info({ image: job.image, blobs: job.layers.length, agents: job.report?.complete }, 'preheated image')
    } catch (err) {
      job.state = 'failed'
      job.error = err instanceof Error ? err.message : String(err)
      const status = (err as { status?: unknown }).status
      if (typeof status === 'number') job.originStatus = status
      log.warn({ image: job.image, err: job.error }, 'preheat failed')
    }
  }

  /** One blob: proven readable with the job's credentials, then pulled by its owner (or here). */
  async #seed(job: Job, l: PreheatLayer, upstream: Upstream, name: string, signal: AbortSignal): Promise<void> {
    const authorization = job.authorization
    if (authorization !== undefined)
      await checkBlobReadable({ origin: this.#i.origin, upstream, name, authorization, signal }, l.digest)
    const owner = this.#i.owner?.(l.digest)
    if (owner !== undefined) {
      l.seeder = owner.id
      try {
        await owner.seed(
          l.digest,
          upstream.registry,
          name,
          (b) => (l.bytes = Math.max(l.bytes, Math.min(b, l.size))),
          signal,
        )
        return
      } catch (err) {
        signal.throwIfAborted()
        // The owner is down or cannot reach the origin: this seeder pulls it rather than fail the job.
        this.#i.log.debug({ digest: l.digest, seeder: owner.id, err: (err as Error).message }, 'owner did not seed')
        delete l.seeder
      }
    }
    const opts = authorization === undefined ? {} : { authorization }
    try {
      await this.#i.puller.start(l.digest, upstream.registry, name, opts).done
    } catch (err) {
      // A pull started with other credentials (the seeder's own, or another job's) may fail where ours succeed.
      if (authorization === undefined) throw err
      await this.#i.puller.start(l.digest, upstream.registry, name, opts).done
    }
    this.#i.onSeeded?.(l.digest)
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

/**
 * `POST /api/v1/preheat` and `GET /api/v1/preheat/:id` on the seeder's API. `guard` (the bearer token check)
 * runs before either: a preheat pins content and fills the quota, and a job names its image. The body's shape
 * is `PREHEAT_BODY_SCHEMA`, checked by Fastify; a body that fails it is 400 `{ error }` naming the field.
 */
export function preheatRoutes(
  preheater: Preheater,
  guard?: (req: FastifyRequest, reply: FastifyReply) => Promise<void>,
): FastifyPluginAsync {
  return async (api) => {
    if (guard !== undefined) api.addHook('onRequest', guard)
    const options = {
      bodyLimit: PREHEAT_BODY_LIMIT_BYTES,
      schema: { body: PREHEAT_BODY_SCHEMA },
      attachValidation: true,
    }
    api.post<{ Body: PreheatRequest }>('/api/v1/preheat', options, async (req, reply) => {
      if (req.validationError !== undefined)
        return reply.code(400).send({ error: schemaErrorReason(req.validationError.validation) })
      const body = req.body
      try {
        const { id, merged } = preheater.submit(body.image, body.platforms, {
          credentials: body.credentials,
          scope: body.scope,
        })
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
