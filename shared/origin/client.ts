import { Readable } from 'node:stream'
import { LRUCache } from 'lru-cache'
import type { Agent, Dispatcher } from 'undici'
import {
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_RETRY_ATTEMPTS,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  DEFAULT_USER_AGENT,
  MAX_BUFFERED_ERROR_BODY_BYTES,
  MAX_KNOWN_REGISTRIES,
  MAX_REDIRECTS,
} from './constants.ts'
import { authorizationOf, type Credential, credentialIdentity, parseBasicAuthorization } from './credentials.ts'
import { OriginError } from './errors.ts'
import {
  drain,
  type HeaderMap,
  headerValue,
  type Method,
  readBounded,
  redactUrl,
  requestHeaders,
  responseHeaders,
  Transport,
  wrapBody,
} from './http.ts'
import type { RetryPolicy } from './retry.ts'
import { defaultScope, splitScopes } from './scope.ts'
import { NodeExchange, type WireResponse } from './node-exchange.ts'
import { fetchToken, type KnownAuth, resolveRealm, type TokenResult } from './token.ts'
import { TokenCache } from './token-cache.ts'
import { loadUndici } from '../process/undici.ts'
import { originUrl, type Upstream } from './upstream.ts'
import { type Challenge, formatChallenge, parseWwwAuthenticate } from './www-authenticate.ts'

export interface OriginClientOptions {
  /** Configured credentials, by `Upstream.registry`. */
  readonly credentials?: ReadonlyMap<string, Credential>
  readonly userAgent?: string
  /** Used only when no dispatcher is given (the client then owns its connection pools). */
  readonly connectTimeoutMs?: number
  readonly headersTimeoutMs?: number
  /** Longest silence between two body bytes. */
  readonly bodyTimeoutMs?: number
  /** Takes every request when given (tests); without it GET and HEAD go through Node's client, the rest undici. */
  readonly dispatcher?: Dispatcher
  /** For GET/HEAD (and token fetches) on 429/5xx and connection failures before any response. */
  readonly retry?: Partial<RetryPolicy>
  /** Every body byte received from the origin side (registry, storage redirects, token server). */
  readonly onBytes?: (n: number) => void
  /** Clock for token expiry. */
  readonly now?: () => number
  /** Jitter source for retry delays. */
  readonly random?: () => number
}

export interface OriginRequest {
  readonly method: Method
  /**
   * Below `/v2/`, e.g. `library/alpine/manifests/latest`; `''` for the base endpoint, which an
   * anonymous request reaches without a token, so the origin's challenge comes back.
   */
  readonly path: string
  readonly query?: URLSearchParams
  /** Accept, Range, Content-Type... Hop-by-hop fields, Authorization and Accept-Encoding are dropped. */
  readonly headers?: Readonly<Record<string, string>>
  /** The client's own Authorization header: forwarded as is, never cached. */
  readonly clientAuthorization?: string
  /** Token scope(s), space-separated; derived from method and path when absent. */
  readonly scope?: string
  /** A stream body cannot be sent twice: the client authenticates before sending it. */
  readonly body?: Readable | Uint8Array
  readonly signal?: AbortSignal
}

export interface OriginResponse {
  readonly status: number
  /** Hop-by-hop fields removed; a relative token realm in WWW-Authenticate made absolute. */
  readonly headers: Readonly<HeaderMap>
  /** Always consume or destroy it. */
  readonly body: Readable
  /**
   * The body's pieces are memory no one else holds (each came off the socket on its own, views into it end where it
   * ends): a consumer done with a piece may move its memory elsewhere (to a hashing thread) instead of copying it.
   */
  readonly bodyOwned?: boolean
}

/** Who a request speaks for, decided once per request. */
interface AuthPlan {
  /** The client's own Authorization header, if it sent one. */
  readonly client: string | undefined
  /** A configured credential for this registry (only when the client sent none). */
  readonly configured: Credential | undefined
  /** What the token server sees: the client's Basic credential, the configured one, or none. */
  readonly tokenCredential: Credential | undefined
  /**
   * Whether tokens may be fetched and cached for this request: not for a client's own Bearer, nor
   * for an anonymous ping of the base endpoint.
   */
  readonly tokens: boolean
  readonly identity: string
}

interface Exchange {
  readonly res: WireResponse
  readonly url: URL
  readonly redirected: boolean
}

const REDIRECT_STATUS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

/**
 * HTTP client for origin registries: Docker token auth (anonymous, configured or the client's
 * own credentials), retries, redirects to blob storage. Any HTTP answer is returned, never thrown;
 * a 401/403 it cannot get past is handed back as the origin sent it, so the agent can pass it on.
 */
export class OriginClient {
  readonly #credentials: ReadonlyMap<string, Credential>
  readonly #transport: Transport
  /** The client's own undici pool, made at its first request with a body (undici is loaded then: see undici.ts). */
  #ownAgent: Promise<Agent> | undefined
  /** GET and HEAD requests' client; none with an injected dispatcher, which then takes everything. */
  readonly #node: NodeExchange | undefined
  readonly #tokens: TokenCache
  /** Each registry's auth scheme, learnt once; clients name registries (`?ns=`), so the least recently used go first. */
  readonly #known = new LRUCache<string, KnownAuth>({ max: MAX_KNOWN_REGISTRIES })
  readonly #onBytes: ((n: number) => void) | undefined

  constructor(opts: OriginClientOptions = {}) {
    this.#credentials = opts.credentials ?? new Map()
    const headersTimeoutMs = opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS
    const bodyTimeoutMs = opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS
    const injected = opts.dispatcher
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    this.#node = injected === undefined ? new NodeExchange({ connectTimeoutMs }) : undefined
    this.#transport = new Transport({
      node: this.#node,
      dispatcher: () =>
        injected ??
        (this.#ownAgent ??= loadUndici().then(
          ({ Agent }) =>
            new Agent({
              connect: { timeout: connectTimeoutMs },
              headersTimeout: headersTimeoutMs,
              bodyTimeout: bodyTimeoutMs,
            }),
        )),
      userAgent: opts.userAgent ?? DEFAULT_USER_AGENT,
      headersTimeoutMs,
      bodyTimeoutMs,
      retry: {
        attempts: Math.max(1, opts.retry?.attempts ?? DEFAULT_RETRY_ATTEMPTS),
        baseDelayMs: opts.retry?.baseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS,
        maxDelayMs: opts.retry?.maxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS,
      },
      ...(opts.random === undefined ? {} : { random: opts.random }),
    })
    this.#tokens = new TokenCache(opts.now === undefined ? {} : { now: opts.now })
    this.#onBytes = opts.onBytes
  }

  async request(upstream: Upstream, req: OriginRequest): Promise<OriginResponse> {
    req.signal?.throwIfAborted()
    const url = originUrl(upstream, req.path, req.query)
    const headers = requestHeaders(req.headers)
    const replayable = !(req.body instanceof Readable)
    const scopes = splitScopes(req.scope ?? defaultScope(req.method, req.path, req.query))
    const plan = this.#plan(upstream, req)
    const key = TokenCache.key(upstream.registry, scopes.join(' '), plan.identity)

    let authorization: string | undefined
    let sentToken = false
    // Set when auth was already tried before sending: a 401 then is the final answer.
    let settled = false
    const cached = plan.tokens ? this.#tokens.get(key) : undefined
    if (cached !== undefined) {
      authorization = `Bearer ${cached}`
      sentToken = true
    } else {
      let known = this.#known.get(upstream.registry)
      // A stream body is sent once, so learn the registry's auth scheme first (one GET /v2/ per registry).
      if (known === undefined && !replayable && plan.tokens) known = await this.#learn(upstream, req.signal)
      if (known?.scheme === 'bearer' && plan.tokens) {
        const t = await this.#token(upstream, known, scopes, plan, key, req.signal)
        settled = t.kind === 'denied'
        sentToken = t.kind === 'token'
        authorization = t.kind === 'token' ? `Bearer ${t.token}` : this.#plain(plan, known)
      } else {
        authorization = this.#plain(plan, known)
      }
    }

    const first = await this.#exchange(upstream, url, req, headers, authorization)
    if (first.res.statusCode !== 401 || first.redirected || settled || !replayable || !plan.tokens) {
      return this.#finish(first)
    }
    const challenges = challengesOf(first.res.headers)
    let learned: KnownAuth | undefined
    try {
      learned = this.#remember(upstream, first.url, challenges)
    } catch (err) {
      first.res.body.destroy()
      throw err
    }
    let retryAuthorization: string
    if (learned?.scheme === 'bearer') {
      // Keep the registry's 401 while asking for a token: if the token server says no, it is the answer.
      const held = await this.#hold(first)
      if (sentToken) this.#tokens.delete(key)
      // Concurrent first requests all meet the 401; one that lands after another's token fetch ended takes that token.
      const fetched = sentToken ? undefined : this.#tokens.get(key)
      if (fetched !== undefined) {
        retryAuthorization = `Bearer ${fetched}`
      } else {
        const challengeScope = challenges.find((c) => c.scheme === 'bearer')?.params['scope']
        const t = await this.#token(upstream, learned, splitScopes(...scopes, challengeScope), plan, key, req.signal)
        if (t.kind === 'denied') return held
        retryAuthorization = `Bearer ${t.token}`
      }
    } else if (learned?.scheme === 'basic' && plan.configured?.kind === 'basic' && authorization === undefined) {
      await drain(first.res.body)
      retryAuthorization = authorizationOf(plan.configured)
    } else {
      return this.#finish(first)
    }
    return this.#finish(await this.#exchange(upstream, url, req, headers, retryAuthorization))
  }

  /** Stops: closes the client's own connection pools (an injected dispatcher is left to its owner). */
  async stop(): Promise<void> {
    this.#node?.stop()
    const own = this.#ownAgent
    if (own !== undefined) await (await own).close()
  }

  #plan(upstream: Upstream, req: OriginRequest): AuthPlan {
    const client = req.clientAuthorization
    if (client !== undefined && client !== '') {
      // Like containerd: a client's Basic credential may be traded for a token; its own Bearer is final.
      const basic = parseBasicAuthorization(client)
      return {
        client,
        configured: undefined,
        tokenCredential: basic,
        tokens: basic !== undefined,
        identity: credentialIdentity(basic),
      }
    }
    const configured = this.#credentials.get(upstream.registry)
    return {
      client: undefined,
      configured,
      tokenCredential: configured,
      // Any token server hands out an anonymous token and the base endpoint accepts it, so fetching
      // one there would turn the origin's "authenticate first" into a 200 for everyone: a client
      // behind the agent (skopeo, podman, docker) would then never learn it must send credentials.
      tokens: configured !== undefined || req.path !== '',
      identity: credentialIdentity(configured),
    }
  }

  /** The Authorization to send without a token. */
  #plain(plan: AuthPlan, known: KnownAuth | undefined): string | undefined {
    if (plan.client !== undefined) return plan.client
    const c = plan.configured
    if (c === undefined) return undefined
    if (c.kind === 'bearer') return authorizationOf(c)
    // A configured password goes to the registry only once it has asked for Basic.
    return known?.scheme === 'basic' ? authorizationOf(c) : undefined
  }

  async #learn(upstream: Upstream, signal: AbortSignal | undefined): Promise<KnownAuth | undefined> {
    const url = originUrl(upstream, '')
    const res = await this.#transport.send(url, {
      method: 'GET',
      headers: {},
      signal,
      retry: true,
      registry: upstream.registry,
    })
    await drain(res.body)
    return res.statusCode === 401 ? this.#remember(upstream, url, challengesOf(res.headers)) : undefined
  }

  #remember(upstream: Upstream, url: URL, challenges: readonly Challenge[]): KnownAuth | undefined {
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params['realm'] !== undefined)
    let known: KnownAuth | undefined
    if (bearer !== undefined) {
      const realm = resolveRealm(upstream, bearer.params['realm']!, url)
      known = { scheme: 'bearer', realm, service: bearer.params['service'] }
    } else if (challenges.some((c) => c.scheme === 'basic')) {
      known = { scheme: 'basic' }
    }
    if (known === undefined) return undefined
    this.#known.set(upstream.registry, known)
    return known
  }

  async #token(
    upstream: Upstream,
    known: KnownAuth & { scheme: 'bearer' },
    scopes: readonly string[],
    plan: AuthPlan,
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<TokenResult> {
    const fetching = this.#tokens.fetchOnce(key, async () => {
      const r = await fetchToken(this.#transport, {
        registry: upstream.registry,
        realm: known.realm,
        service: known.service,
        scopes,
        credential: plan.tokenCredential,
        onBytes: this.#onBytes,
      })
      if (r.kind === 'token') this.#tokens.set(key, r.token, r.expiresInS)
      return r
    })
    return await raceAbort(fetching, signal)
  }

  /** Sends one request, following redirects for GET/HEAD; credentials never leave the origin they were meant for. */
  async #exchange(
    upstream: Upstream,
    url: URL,
    req: OriginRequest,
    headers: Readonly<Record<string, string>>,
    authorization: string | undefined,
  ): Promise<Exchange> {
    const follow = req.method === 'GET' || req.method === 'HEAD'
    let target = url
    let auth = authorization
    for (let hop = 0; ; hop++) {
      const res = await this.#transport.send(target, {
        method: req.method,
        headers: auth === undefined ? headers : { ...headers, authorization: auth },
        body: hop === 0 ? req.body : undefined,
        signal: req.signal,
        retry: follow,
        registry: upstream.registry,
      })
      const location = headerValue(res.headers, 'location')
      if (!follow || !REDIRECT_STATUS.has(res.statusCode) || location === undefined) {
        return { res, url: target, redirected: hop > 0 }
      }
      await drain(res.body)
      if (hop >= MAX_REDIRECTS) {
        throw new OriginError('ORIGIN_BAD_REDIRECT', upstream.registry, `more than ${MAX_REDIRECTS} redirects`)
      }
      const next = URL.canParse(location, target.href) ? new URL(location, target) : undefined
      if (next === undefined || (next.protocol !== 'https:' && next.protocol !== 'http:')) {
        throw new OriginError('ORIGIN_BAD_REDIRECT', upstream.registry, `unusable redirect from ${redactUrl(target)}`)
      }
      // Blob storage (S3, a CDN) gets a presigned URL, never the registry credential.
      if (next.origin !== target.origin) auth = undefined
      target = next
    }
  }

  /** Reads a 401 body (small) so the response can still be returned after the connection is reused. */
  async #hold(ex: Exchange): Promise<OriginResponse> {
    const bytes = (await readBounded(ex.res.body, MAX_BUFFERED_ERROR_BODY_BYTES, this.#onBytes)) ?? Buffer.alloc(0)
    const headers: HeaderMap = { ...withAbsoluteRealm(responseHeaders(ex.res.headers), ex.url) }
    headers['content-length'] = String(bytes.byteLength)
    return { status: ex.res.statusCode, headers, body: Readable.from(bytes.byteLength === 0 ? [] : [bytes]) }
  }

  #finish(ex: Exchange): OriginResponse {
    const headers = withAbsoluteRealm(responseHeaders(ex.res.headers), ex.url)
    // Each piece is memory of its own with either client: Node's parser copies it out of the socket's read, undici
    // gives each read its own buffer.
    return { status: ex.res.statusCode, headers, body: wrapBody(ex.res.body, this.#onBytes), bodyOwned: true }
  }
}

function challengesOf(headers: WireResponse['headers']): Challenge[] {
  const v = headers['www-authenticate']
  if (v === undefined) return []
  return (Array.isArray(v) ? v : [v]).flatMap(parseWwwAuthenticate)
}

/**
 * A client that gets the origin's 401 through the agent must find the token server itself, so
 * a token realm relative to the origin is made absolute (it would otherwise point at the agent).
 */
function withAbsoluteRealm(headers: HeaderMap, base: URL): HeaderMap {
  const v = headers['www-authenticate']
  if (v === undefined) return headers
  const fix = (value: string): string => {
    const challenges = parseWwwAuthenticate(value)
    let changed = false
    const fixed = challenges.map((c) => {
      const realm = c.params['realm']
      // A Basic realm is a protection-space name, not a URL: only Bearer realms are locations.
      if (c.scheme !== 'bearer' || realm === undefined || URL.canParse(realm) || !URL.canParse(realm, base.href))
        return c
      changed = true
      return { ...c, params: { ...c.params, realm: new URL(realm, base).href } }
    })
    return changed ? fixed.map(formatChallenge).join(', ') : value
  }
  return { ...headers, 'www-authenticate': Array.isArray(v) ? v.map(fix) : fix(v) }
}

/** Waits for a shared promise, but lets this caller leave when its own signal fires. */
async function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return await p
  signal.throwIfAborted()
  // Others may still await `p`; if nobody does after we leave, its failure must not go unhandled.
  p.catch(() => {})
  return await new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
