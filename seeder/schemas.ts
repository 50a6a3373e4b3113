import type { FastifySchemaValidationError } from 'fastify'

/**
 * JSON schemas of the seeder API's request bodies: Fastify validates a body against its route's schema
 * before the handler runs, and the handler answers 400 `{ error }` with `schemaErrorReason`. The seeder's
 * Fastify app turns type coercion off, so a number is never accepted where a string is due (or the
 * reverse). Grammar (image references, digests, repository names) is parsed after, where it is used.
 */

/** The seeder API's Fastify `ajv` option: a body is checked as sent, no coercion, nothing removed. */
export const API_AJV_OPTIONS = { customOptions: { coerceTypes: false, removeAdditional: false } } as const

export const MAX_PREFETCH_AGENTS = 1000
export const MAX_PREHEAT_PLATFORMS = 64
export const MAX_CREDENTIAL_CHARS = 4096
/** Sites one preheat may name in `scope.sites`. */
export const MAX_PREHEAT_SITES = 256
/** A site name, as `--site` takes it (shared/config's rule: a Kubernetes zone label's characters, at most 63). */
export const SITE_NAME_PATTERN = '^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$'
const PLATFORM_PATTERN = '^[a-zA-Z0-9._-]+/[a-zA-Z0-9._-]+(/[a-zA-Z0-9._-]+)?$'

/** Credentials never reach a header with a line break in them; errors name the field, never its value. */
const credentialString = (pattern: string) =>
  ({ type: 'string', minLength: 1, maxLength: MAX_CREDENTIAL_CHARS, pattern }) as const

/** `POST /api/v1/preheat`. Unknown fields are ignored, as they always were. */
export const PREHEAT_BODY_SCHEMA = {
  type: 'object',
  required: ['image'],
  properties: {
    image: { type: 'string' },
    platforms: {
      type: 'array',
      maxItems: MAX_PREHEAT_PLATFORMS,
      items: { type: 'string', pattern: PLATFORM_PATTERN },
    },
    credentials: {
      type: 'object',
      properties: {
        token: credentialString('^\\S+$'),
        username: credentialString('^[^:\\r\\n]+$'),
        password: credentialString('^[^\\r\\n]+$'),
      },
      // `{ username, password }` or `{ token }`, never both.
      if: { required: ['token'] },
      then: { not: { anyOf: [{ required: ['username'] }, { required: ['password'] }] } },
      else: { required: ['username', 'password'] },
    },
    scope: {
      type: 'object',
      properties: {
        agents: { type: 'integer', minimum: 0, maximum: MAX_PREFETCH_AGENTS },
        // Copies per site: `{ "store-17": 2 }` asks two agents of site store-17 to hold the image.
        sites: {
          type: 'object',
          maxProperties: MAX_PREHEAT_SITES,
          propertyNames: { pattern: SITE_NAME_PATTERN },
          additionalProperties: { type: 'integer', minimum: 0, maximum: MAX_PREFETCH_AGENTS },
        },
      },
    },
  },
} as const

export type PreheatCredentials = { readonly token: string } | { readonly username: string; readonly password: string }

/** A body that passed `PREHEAT_BODY_SCHEMA`. */
export interface PreheatRequest {
  readonly image: string
  readonly platforms?: readonly string[]
  readonly credentials?: PreheatCredentials
  readonly scope?: PreheatScope
}

/** Which agents a preheat also asks to hold the image: N anywhere, and per site. */
export interface PreheatScope {
  /** At least this many agents in all (those asked for a site count too). */
  readonly agents?: number
  /** Site name → agents of that site that hold the image, pinned for their --preheat-ttl. */
  readonly sites?: Readonly<Record<string, number>>
}

/** A distribution-registry envelope: `{ events: [{ action, target, request? }, …] }`. */
const DISTRIBUTION_ENVELOPE = {
  type: 'object',
  required: ['events'],
  properties: {
    events: {
      type: 'array',
      items: {
        type: 'object',
        required: ['action', 'target'],
        properties: { action: { type: 'string' }, target: { type: 'object' } },
        // A push names what was pushed; other actions (pull, delete, mount) are counted and ignored.
        if: { properties: { action: { const: 'push' } } },
        then: { properties: { target: { required: ['mediaType'], properties: { mediaType: { type: 'string' } } } } },
      },
    },
  },
} as const

/** A Harbor webhook: `{ type, event_data }`; only `PUSH_ARTIFACT` is read further. */
const HARBOR_PAYLOAD = {
  type: 'object',
  required: ['type', 'event_data'],
  properties: { type: { type: 'string' } },
  if: { properties: { type: { const: 'PUSH_ARTIFACT' } } },
  then: {
    properties: {
      event_data: {
        type: 'object',
        required: ['resources'],
        properties: {
          resources: { type: 'array', items: { type: 'object', properties: { digest: { type: 'string' } } } },
          repository: { type: 'object' },
        },
      },
    },
  },
} as const

/** `POST /api/v1/notifications`: either payload; every level accepts fields it does not name. */
export const NOTIFICATION_BODY_SCHEMA = { type: 'object', anyOf: [DISTRIBUTION_ENVELOPE, HARBOR_PAYLOAD] } as const

/** A body that passed `NOTIFICATION_BODY_SCHEMA`. */
export type NotificationBody =
  | {
      readonly events: readonly {
        readonly action: string
        readonly target: { readonly mediaType?: string; readonly digest?: unknown; readonly repository?: unknown }
        readonly request?: unknown
      }[]
    }
  | {
      readonly type: string
      readonly event_data: {
        readonly resources?: readonly { readonly digest?: string }[]
        readonly repository?: { readonly repo_full_name?: unknown }
      }
    }

/** What a failed `not` means, by where it is: ajv can only say "must NOT be valid". */
const NOT_MESSAGES: Readonly<Record<string, string>> = {
  credentials: 'expected { username, password } or { token }, not both',
}

/** ajv's words for a bad key say only "must match pattern": say what a site name is (the key is not echoed). */
function propertyNameMessage(e: FastifySchemaValidationError): string | undefined {
  if (e.keyword !== 'pattern' || !e.schemaPath.endsWith('/propertyNames/pattern')) return undefined
  return "a key is not a site name (letters, digits, '.', '_', '-'; at most 63)"
}

/** One line for a 400 body: each failed rule with where it failed (`credentials.token: must match …`). */
export function schemaErrorReason(errors: readonly FastifySchemaValidationError[]): string {
  const line = (e: FastifySchemaValidationError) => {
    const path = e.instancePath.replace(/^\//, '').replaceAll('/', '.')
    const message = e.keyword === 'not' ? (NOT_MESSAGES[path] ?? e.message) : (propertyNameMessage(e) ?? e.message)
    return `${path === '' ? 'body' : path}: ${message ?? 'invalid'}`
  }
  // anyOf/oneOf/if summaries repeat what their branches' errors say, when there are any.
  const specific = errors.filter((e) => !['anyOf', 'oneOf', 'if', 'propertyNames'].includes(e.keyword))
  const lines = (specific.length > 0 ? specific : errors).map(line)
  return [...new Set(lines.length > 0 ? lines : ['body: invalid'])].join('; ')
}
