import { DEFAULT_TOKEN_EXPIRES_IN_S, MAX_TOKEN_RESPONSE_BYTES, TOKEN_FETCH_TIMEOUT_MS } from './constants.ts'
import { authorizationOf, type Credential } from './credentials.ts'
import { OriginError } from './errors.ts'
import { drain, readBounded, redactUrl, type Transport } from './http.ts'
import type { Upstream } from './upstream.ts'

/** What a registry told us about its auth: learned from a 401, reused to skip the next one. */
export type KnownAuth =
  | { readonly scheme: 'bearer'; readonly realm: URL; readonly service: string | undefined }
  | { readonly scheme: 'basic' }

export type TokenResult =
  | { readonly kind: 'token'; readonly token: string; readonly expiresInS: number }
  /** The token server refused the credential (401/403): the registry's own 401 is the answer. */
  | { readonly kind: 'denied'; readonly status: number }

// A token goes into a header verbatim: visible ASCII only, so a hostile server cannot inject lines.
const TOKEN_RE = /^[\x21-\x7e]{1,16384}$/

/**
 * Resolves a challenge's realm against the URL that sent it and refuses ones that would leak a
 * credential: non-http(s) schemes, userinfo, and plain http when the registry itself is https.
 */
export function resolveRealm(upstream: Upstream, realm: string, base: URL): URL {
  let url: URL
  try {
    url = new URL(realm, base)
  } catch {
    throw new OriginError('TOKEN_REALM_REFUSED', upstream.registry, 'token realm is not a URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new OriginError('TOKEN_REALM_REFUSED', upstream.registry, `token realm scheme ${url.protocol} refused`)
  }
  if (url.protocol === 'http:' && upstream.baseUrl.protocol === 'https:') {
    throw new OriginError('TOKEN_REALM_REFUSED', upstream.registry, 'plain-http token realm for an https registry')
  }
  if (url.username !== '' || url.password !== '') {
    throw new OriginError('TOKEN_REALM_REFUSED', upstream.registry, 'token realm carries credentials')
  }
  return url
}

export interface TokenRequest {
  readonly registry: string
  readonly realm: URL
  readonly service: string | undefined
  readonly scopes: readonly string[]
  readonly credential: Credential | undefined
  readonly onBytes?: ((n: number) => void) | undefined
}

/** Docker token spec GET: `realm?service=..&scope=..&scope=..`, Basic (or a configured Bearer) when we have one. */
export async function fetchToken(transport: Transport, req: TokenRequest): Promise<TokenResult> {
  const url = new URL(req.realm.href)
  if (req.service !== undefined) url.searchParams.set('service', req.service)
  for (const s of req.scopes) url.searchParams.append('scope', s)
  const headers: Record<string, string> = { accept: 'application/json' }
  if (req.credential !== undefined) headers['authorization'] = authorizationOf(req.credential)
  const fail = (why: string, cause?: unknown) =>
    new OriginError('TOKEN_FETCH_FAILED', req.registry, `token from ${redactUrl(url)}: ${why}`, { cause })
  // Shared by every request waiting for this token, so it answers to its own deadline only.
  const signal = AbortSignal.timeout(TOKEN_FETCH_TIMEOUT_MS)
  try {
    const res = await transport.send(url, { method: 'GET', headers, signal, retry: true, registry: req.registry })
    if (res.statusCode === 401 || res.statusCode === 403) {
      await drain(res.body)
      return { kind: 'denied', status: res.statusCode }
    }
    if (res.statusCode !== 200) {
      await drain(res.body)
      throw fail(`status ${res.statusCode}`)
    }
    const bytes = await readBounded(res.body, MAX_TOKEN_RESPONSE_BYTES, req.onBytes)
    if (bytes === undefined) throw fail(`answer larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`)
    return parseTokenResponse(bytes, fail)
  } catch (err) {
    if (err instanceof OriginError) throw err
    throw fail(signal.aborted ? 'timed out' : (err as Error).message, err)
  }
}

function parseTokenResponse(bytes: Buffer, fail: (why: string) => Error): TokenResult {
  let body: unknown
  try {
    body = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw fail('answer is not JSON')
  }
  if (typeof body !== 'object' || body === null) throw fail('answer is not a JSON object')
  const o = body as Record<string, unknown>
  // Docker Hub sends both; OAuth2-style servers only access_token.
  const token = typeof o['token'] === 'string' && o['token'] !== '' ? o['token'] : o['access_token']
  if (typeof token !== 'string' || !TOKEN_RE.test(token)) throw fail('answer has no usable token')
  const e = o['expires_in']
  const expiresInS = typeof e === 'number' && Number.isFinite(e) && e > 0 ? e : DEFAULT_TOKEN_EXPIRES_IN_S
  return { kind: 'token', token, expiresInS }
}
