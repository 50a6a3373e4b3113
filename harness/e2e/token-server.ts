import { createPrivateKey, type KeyObject, randomBytes, randomUUID, sign, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { removeDir, runOk, tempDir } from './process.ts'
import type { TokenIssuer } from './registry.ts'

export type RegistryAction = 'pull' | 'push' | 'delete' | '*'

export interface TokenUser {
  readonly username: string
  readonly password: string
  /** Repository name (or '*' for every repository) → actions this user may be granted. */
  readonly repositories: Readonly<Record<string, readonly RegistryAction[]>>
}

export interface StartTokenServerOptions {
  readonly users?: readonly TokenUser[]
  /** Repositories anyone, anonymous included, may pull. */
  readonly publicRepositories?: readonly string[]
  readonly service?: string
  readonly issuer?: string
  readonly ttlSeconds?: number
}

/** One token request as the server saw it (credentials left out). */
export interface TokenRequest {
  readonly method: 'GET' | 'POST'
  readonly grantType: 'basic' | 'anonymous' | 'password' | 'refresh_token'
  readonly username: string | undefined
  readonly scopes: readonly string[]
  readonly status: number
}

export interface TokenServer extends TokenIssuer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly requests: readonly TokenRequest[]
  /** Asks the server for a token over HTTP, as a client would (GET, Basic credentials if given). */
  fetchToken(scopes: readonly string[], creds?: { username: string; password: string }): Promise<string>
  stop(): Promise<void>
}

interface Access {
  readonly type: string
  readonly name: string
  readonly actions: string[]
}

class AuthFailed extends Error {
  override readonly name = 'AuthFailed'
  readonly code = 'E2E_TOKEN_AUTH_FAILED'
}

function base64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString('base64url')
}

/** `repository:library/x:pull,push` → type, name, actions; the name itself may not contain ':' but a port may. */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first === -1 || last === first) return undefined
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter((a) => a !== ''),
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > 64 * 1024) throw new AuthFailed('token request body too large')
    parts.push(chunk as Buffer)
  }
  return Buffer.concat(parts).toString('utf8')
}

/**
 * A small Docker-style token server: ES256 JWTs with an `x5c` chain that distribution 2.8 verifies
 * against `rootcertbundle`. Answers GET with Basic credentials (docker, skopeo, podman) and the OAuth2
 * POST form with `grant_type=password` or `refresh_token` (containerd), as Docker Hub's does.
 */
export async function startTokenServer(opts: StartTokenServerOptions = {}): Promise<TokenServer> {
  const dir = await tempDir('token')
  const keyPath = join(dir, 'key.pem')
  const certPath = join(dir, 'cert.pem')
  await runOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    '/CN=shoal-e2e-token-issuer',
  ])
  const key: KeyObject = createPrivateKey(await readFile(keyPath))
  const certDer = new X509Certificate(await readFile(certPath)).raw
  const service = opts.service ?? 'shoal-e2e-registry'
  const issuer = opts.issuer ?? 'shoal-e2e-token-issuer'
  const ttlSeconds = opts.ttlSeconds ?? 300
  const users = new Map((opts.users ?? []).map((u) => [u.username, u]))
  const publicRepos = new Set(opts.publicRepositories ?? [])
  const refreshTokens = new Map<string, string>()
  const requests: TokenRequest[] = []

  const authenticate = (username: string, password: string): TokenUser => {
    const user = users.get(username)
    if (user === undefined || user.password !== password) throw new AuthFailed(`bad credentials for ${username}`)
    return user
  }

  const grant = (user: TokenUser | undefined, scopes: readonly string[]): Access[] => {
    const out: Access[] = []
    for (const scope of scopes) {
      const wanted = parseScope(scope)
      if (wanted === undefined || wanted.type !== 'repository') continue
      const allowed = new Set<string>()
      if (publicRepos.has(wanted.name)) allowed.add('pull')
      for (const action of [...(user?.repositories[wanted.name] ?? []), ...(user?.repositories['*'] ?? [])]) {
        if (action === '*') for (const a of ['pull', 'push', 'delete']) allowed.add(a)
        else allowed.add(action)
      }
      const actions = wanted.actions.includes('*') ? [...allowed] : wanted.actions.filter((a) => allowed.has(a))
      if (actions.length > 0) out.push({ type: wanted.type, name: wanted.name, actions })
    }
    return out
  }

  const mint = (user: TokenUser | undefined, scopes: readonly string[]): string => {
    const now = Math.floor(Date.now() / 1000)
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] }
    const claims = {
      iss: issuer,
      sub: user?.username ?? '',
      aud: service,
      exp: now + ttlSeconds,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access: grant(user, scopes),
    }
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
    // JWS wants the raw r||s signature, not DER.
    const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' })
    return `${signingInput}.${base64url(signature)}`
  }

  const newRefreshToken = (user: TokenUser): string => {
    const token = randomBytes(24).toString('base64url')
    refreshTokens.set(token, user.username)
    return token
  }

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  const handleGet = (req: IncomingMessage, url: URL, res: ServerResponse): void => {
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter((x) => x !== ''))
    const header = req.headers.authorization
    let user: TokenUser | undefined
    let grantType: TokenRequest['grantType'] = 'anonymous'
    let username: string | undefined
    if (header !== undefined) {
      const m = /^Basic\s+(.+)$/i.exec(header)
      const decoded = m === null ? '' : Buffer.from(m[1]!, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      username = colon === -1 ? undefined : decoded.slice(0, colon)
      grantType = 'basic'
      try {
        if (username === undefined) throw new AuthFailed('malformed basic credentials')
        user = authenticate(username, decoded.slice(colon + 1))
      } catch {
        requests.push({ method: 'GET', grantType, username, scopes, status: 401 })
        res.setHeader('www-authenticate', 'Basic realm="shoal-e2e-token"')
        json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] })
        return
      }
    }
    requests.push({ method: 'GET', grantType, username, scopes, status: 200 })
    const token = mint(user, scopes)
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: ttlSeconds,
      issued_at: new Date().toISOString(),
    }
    if (user !== undefined && url.searchParams.get('offline_token') === 'true') {
      body['refresh_token'] = newRefreshToken(user)
    }
    json(res, 200, body)
  }

  const handlePost = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const form = new URLSearchParams(await readBody(req))
    const scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '')
    const grantType = form.get('grant_type')
    if (grantType !== 'password' && grantType !== 'refresh_token') {
      json(res, 400, { error: 'unsupported_grant_type' })
      return
    }
    let user: TokenUser
    let username: string | undefined
    try {
      if (grantType === 'password') {
        username = form.get('username') ?? ''
        user = authenticate(username, form.get('password') ?? '')
      } else {
        username = refreshTokens.get(form.get('refresh_token') ?? '')
        const found = username === undefined ? undefined : users.get(username)
        if (found === undefined) throw new AuthFailed('unknown refresh token')
        user = found
      }
    } catch {
      requests.push({ method: 'POST', grantType, username, scopes, status: 401 })
      json(res, 401, { error: 'invalid_grant' })
      return
    }
    requests.push({ method: 'POST', grantType, username, scopes, status: 200 })
    const body: Record<string, unknown> = {
      access_token: mint(user, scopes),
      scope: scopes.join(' '),
      expires_in: ttlSeconds,
      issued_at: new Date().toISOString(),
    }
    if (form.get('access_type') === 'offline') body['refresh_token'] = newRefreshToken(user)
    json(res, 200, body)
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid')
    if (url.pathname !== '/token') {
      json(res, 404, { error: 'not_found' })
      return
    }
    if (req.method === 'GET') {
      handleGet(req, url, res)
    } else if (req.method === 'POST') {
      handlePost(req, res).catch(() => json(res, 400, { error: 'invalid_request' }))
    } else {
      json(res, 405, { error: 'method_not_allowed' })
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}`
  const realm = `${url}/token`

  return {
    url,
    realm,
    service,
    issuer,
    rootCertBundle: certPath,
    requests,
    async fetchToken(scopes, creds) {
      const q = new URLSearchParams({ service })
      for (const s of scopes) q.append('scope', s)
      const headers: Record<string, string> = {}
      if (creds !== undefined) {
        headers['authorization'] = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
      }
      const res = await fetch(`${realm}?${q}`, { headers })
      if (res.status !== 200) throw new AuthFailed(`token server answered ${res.status}`)
      const body = (await res.json()) as { token: string }
      return body.token
    },
    async stop() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
      await removeDir(dir)
    },
  }
}
