import { request } from 'undici'
import { SamplePushError } from './errors.ts'

export interface Challenge {
  readonly scheme: string
  readonly params: Readonly<Record<string, string>>
}

/** Parses the first challenge of a `WWW-Authenticate` header (`Bearer realm="…",service="…",scope="…"`). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9._~+/-]*)\s*(.*)$/s.exec(header)
  if (m === null) return undefined
  const params: Record<string, string> = {}
  for (const p of m[2]!.matchAll(/([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    params[p[1]!.toLowerCase()] = p[2] === undefined ? (p[3] ?? '') : p[2].replace(/\\(.)/g, '$1')
  }
  return { scheme: m[1]!.toLowerCase(), params }
}

/**
 * The Authorization header a push sends: none until a 401, then Basic, or a Bearer token fetched
 * from the challenge's realm with the Basic credentials (the distribution token flow).
 */
export class PushAuth {
  readonly #username: string | undefined
  readonly #password: string | undefined
  readonly #defaultScope: string
  #header: string | undefined

  constructor(opts: { username?: string; password?: string; defaultScope: string }) {
    this.#username = opts.username
    this.#password = opts.password
    this.#defaultScope = opts.defaultScope
  }

  get header(): string | undefined {
    return this.#header
  }

  #basic(): string | undefined {
    if (this.#username === undefined) return undefined
    return `Basic ${Buffer.from(`${this.#username}:${this.#password ?? ''}`).toString('base64')}`
  }

  /** Answers a 401 challenge; afterwards `header` holds what to retry with. */
  async answer(wwwAuthenticate: string | undefined, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const challenge = wwwAuthenticate === undefined ? undefined : parseChallenge(wwwAuthenticate)
    if (challenge?.scheme === 'basic') {
      const basic = this.#basic()
      if (basic === undefined)
        throw new SamplePushError('registry wants Basic credentials; none given', { status: 401 })
      this.#header = basic
      return
    }
    if (challenge?.scheme !== 'bearer' || challenge.params['realm'] === undefined) {
      throw new SamplePushError(`unsupported auth challenge: ${challenge?.scheme ?? 'none'}`, { status: 401 })
    }
    this.#header = `Bearer ${await this.#fetchToken(challenge.params, opts.signal)}`
  }

  async #fetchToken(params: Readonly<Record<string, string>>, signal: AbortSignal | undefined): Promise<string> {
    const realm = new URL(params['realm']!)
    if (params['service'] !== undefined) realm.searchParams.set('service', params['service'])
    realm.searchParams.set('scope', params['scope'] ?? this.#defaultScope)
    if (this.#username !== undefined) realm.searchParams.set('account', this.#username)
    const basic = this.#basic()
    const res = await request(realm, {
      method: 'GET',
      headers: basic === undefined ? {} : { authorization: basic },
      ...(signal === undefined ? {} : { signal }),
    })
    const text = await res.body.text()
    if (res.statusCode !== 200) {
      throw new SamplePushError(`token request to ${realm.origin}${realm.pathname} failed: ${res.statusCode}`, {
        status: res.statusCode,
      })
    }
    let body: { token?: unknown; access_token?: unknown }
    try {
      body = JSON.parse(text) as { token?: unknown; access_token?: unknown }
    } catch (cause) {
      throw new SamplePushError('token response is not JSON', { status: res.statusCode, cause })
    }
    const token = typeof body.token === 'string' ? body.token : body.access_token
    if (typeof token !== 'string' || token === '') throw new SamplePushError('token response holds no token')
    return token
  }
}
