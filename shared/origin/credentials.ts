import { createHmac, randomBytes } from 'node:crypto'

/** A credential for one registry: from the config, or decoded from a client's Basic header. */
export type Credential =
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'bearer'; readonly token: string }

// Per-process key: cache keys derived from secrets are useless outside this process, and a memory
// dump does not hand out plain hashes of passwords to brute-force.
const IDENTITY_KEY = randomBytes(32)

export const ANONYMOUS = 'anonymous'

/** A stable, non-reversible name for a credential, used in cache keys instead of the secret. */
export function credentialIdentity(cred: Credential | undefined): string {
  if (cred === undefined) return ANONYMOUS
  const h = createHmac('sha256', IDENTITY_KEY)
  if (cred.kind === 'basic') h.update(`basic\0${cred.username}\0${cred.password}`)
  else h.update(`bearer\0${cred.token}`)
  return h.digest('base64url')
}

/** The Authorization header value that presents a credential. */
export function authorizationOf(cred: Credential): string {
  if (cred.kind === 'bearer') return `Bearer ${cred.token}`
  return `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}`
}

/** Decodes a client's `Basic` Authorization header; undefined for any other scheme or a malformed one. */
export function parseBasicAuthorization(header: string): Credential | undefined {
  const m = /^basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(header)
  if (m === null) return undefined
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return undefined
  return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/** Credentials as written in a config file's `registries:` section, by registry. */
export function credentialsFrom(
  settings: ReadonlyMap<string, { readonly username?: string; readonly password?: string; readonly token?: string }>,
): ReadonlyMap<string, Credential> {
  const out = new Map<string, Credential>()
  for (const [registry, s] of settings) {
    if (s.username !== undefined && s.password !== undefined) {
      out.set(registry, { kind: 'basic', username: s.username, password: s.password })
    } else if (s.token !== undefined) {
      out.set(registry, { kind: 'bearer', token: s.token })
    }
  }
  return out
}
