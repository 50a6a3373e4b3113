import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import { LRUCache } from 'lru-cache'
import { isDigest, isRepositoryName, MANIFEST_MEDIA_TYPES } from '../shared/oci/index.ts'
import type { Logger } from '../shared/log/index.ts'
import { InvalidPreheatRequestError } from './preheat.ts'
import { NOTIFICATION_BODY_SCHEMA, type NotificationBody, schemaErrorReason } from './schemas.ts'

export const REGISTRY_EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json'
/** The registry batches events into one envelope: room for many, still bounded. */
export const NOTIFICATION_BODY_LIMIT_BYTES = 1024 * 1024
/** A repeat of the same manifest push inside this window is dropped (registries retry and fan out). */
export const NOTIFICATION_DEDUP_MS = 10 * 60 * 1000
const DEDUP_MAX_ENTRIES = 10_000

export class MalformedNotificationError extends Error {
  override name = 'MalformedNotificationError'
  readonly code = 'MALFORMED_NOTIFICATION'
}

/** One manifest push worth preheating: `repository@digest`, optionally on a named registry host. */
export interface ManifestPush {
  readonly repository: string
  readonly digest: string
  readonly host?: string
}

/**
 * Reads a distribution-registry envelope (`{ events: [...] }`) or a Harbor `PUSH_ARTIFACT` payload whose
 * shape `NOTIFICATION_BODY_SCHEMA` has checked. Returns manifest pushes plus how many events were not
 * ones (pulls, blob pushes, deletes...); a pushed manifest's digest and repository must parse.
 */
export function parseNotification(body: NotificationBody): { pushes: ManifestPush[]; ignored: number } {
  if ('events' in body) return parseDistribution(body.events)
  return parseHarbor(body.type, body.event_data)
}

function parseDistribution(events: Extract<NotificationBody, { events: unknown }>['events']): {
  pushes: ManifestPush[]
  ignored: number
} {
  const pushes: ManifestPush[] = []
  let ignored = 0
  for (const [i, ev] of events.entries()) {
    const t = ev.target
    if (ev.action !== 'push' || !MANIFEST_MEDIA_TYPES.includes(t.mediaType as string)) {
      ignored++
      continue
    }
    if (typeof t.digest !== 'string' || !isDigest(t.digest))
      throw new MalformedNotificationError(`events[${i}].target.digest: expected a digest`)
    if (typeof t.repository !== 'string' || !isRepositoryName(t.repository))
      throw new MalformedNotificationError(`events[${i}].target.repository: expected a repository name`)
    const host = (ev.request as { host?: unknown } | null | undefined)?.host
    pushes.push({ repository: t.repository, digest: t.digest, ...(typeof host === 'string' ? { host } : {}) })
  }
  return { pushes, ignored }
}

function parseHarbor(
  type: string,
  data: Extract<NotificationBody, { type: unknown }>['event_data'],
): { pushes: ManifestPush[]; ignored: number } {
  if (type !== 'PUSH_ARTIFACT') return { pushes: [], ignored: 1 }
  const repository = data.repository?.repo_full_name
  if (typeof repository !== 'string' || !isRepositoryName(repository))
    throw new MalformedNotificationError('event_data.repository.repo_full_name: expected a repository name')
  const pushes: ManifestPush[] = []
  for (const [i, r] of (data.resources ?? []).entries()) {
    const digest = r.digest
    if (typeof digest !== 'string' || !isDigest(digest))
      throw new MalformedNotificationError(`event_data.resources[${i}].digest: expected a digest`)
    pushes.push({ repository, digest })
  }
  return { pushes, ignored: 0 }
}

/** `*` matches within one path component, `**` across them; no patterns means every repository. */
export function repositoryMatcher(patterns: readonly string[]): (repository: string) => boolean {
  if (patterns.length === 0) return () => true
  const res = patterns.map((p) => {
    const src = p
      .split('**')
      .map((part) =>
        part
          .split('*')
          .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('[^/]*'),
      )
      .join('.*')
    return new RegExp(`^${src}$`)
  })
  return (repository) => res.some((r) => r.test(repository))
}

export interface NotificationRoutesInit {
  readonly token: string
  readonly repositories: readonly string[]
  /** Starts (or joins) a preheat of `image`; throws InvalidPreheatRequestError when it cannot be one. */
  readonly preheat: (image: string) => void
  /** True when `host` is a registry this seeder pulls from (else the default origin is meant). */
  readonly knownRegistry: (host: string) => boolean
  readonly log: Logger
  readonly now?: () => number
}

function digestOfToken(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** `POST /api/v1/notifications`: registry webhooks, bearer-authenticated, work done in the background. */
export function notificationRoutes(init: NotificationRoutesInit): FastifyPluginAsync {
  const expected = digestOfToken(init.token)
  const matches = repositoryMatcher(init.repositories)
  const now = init.now ?? Date.now
  // Manifest pushes already preheated: each is dropped as a repeat for NOTIFICATION_DEDUP_MS; a flood of
  // distinct pushes pushes the least recent out first.
  const seen = new LRUCache<string, true>({
    max: DEDUP_MAX_ENTRIES,
    ttl: NOTIFICATION_DEDUP_MS,
    ttlResolution: 0,
    perf: { now },
  })
  return async (app) => {
    // Refuse unauthenticated callers before their body is read.
    app.addHook('onRequest', async (req, reply) => {
      const auth = req.headers.authorization
      const given = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : undefined
      if (given === undefined || !timingSafeEqual(digestOfToken(given), expected))
        return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'bad or missing bearer token' })
    })
    app.addContentTypeParser(
      [REGISTRY_EVENTS_MEDIA_TYPE, 'application/json'],
      { parseAs: 'string', bodyLimit: NOTIFICATION_BODY_LIMIT_BYTES },
      (_req, body, done) => {
        try {
          done(null, JSON.parse(body as string))
        } catch {
          done(Object.assign(new MalformedNotificationError('body is not JSON'), { statusCode: 400 }))
        }
      },
    )
    const options = {
      bodyLimit: NOTIFICATION_BODY_LIMIT_BYTES,
      schema: { body: NOTIFICATION_BODY_SCHEMA },
      attachValidation: true,
    }
    app.post<{ Body: NotificationBody }>('/api/v1/notifications', options, async (req, reply) => {
      if (req.validationError !== undefined)
        return reply.code(400).send({ error: schemaErrorReason(req.validationError.validation) })
      let parsed: { pushes: ManifestPush[]; ignored: number }
      try {
        parsed = parseNotification(req.body)
      } catch (err) {
        if (err instanceof MalformedNotificationError) return reply.code(400).send({ error: err.message })
        throw err
      }
      let accepted = 0
      let duplicates = 0
      let ignored = parsed.ignored
      for (const p of parsed.pushes) {
        if (!matches(p.repository)) {
          ignored++
          continue
        }
        const registry = p.host !== undefined && init.knownRegistry(p.host) ? `${p.host}/` : ''
        const image = `${registry}${p.repository}@${p.digest}`
        if (seen.has(image)) {
          duplicates++
          continue
        }
        try {
          init.preheat(image)
          seen.set(image, true)
          accepted++
        } catch (err) {
          if (!(err instanceof InvalidPreheatRequestError)) throw err
          init.log.warn({ image, err: err.message }, 'notification not preheated')
          ignored++
        }
      }
      return reply.code(200).send({ accepted, duplicates, ignored })
    })
  }
}
