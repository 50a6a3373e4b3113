import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Upstream } from '../../../shared/origin/index.ts'

/** A request as the fake saw it. */
export interface Seen {
  readonly method: string
  readonly url: string
  readonly authorization: string | undefined
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
}

export interface FakeRegistryOptions {
  readonly auth: 'none' | 'basic' | 'bearer'
  /** username → password, for Basic at the registry (auth: basic) or at the token server (auth: bearer). */
  readonly users?: Readonly<Record<string, string>>
  /** Long-lived tokens the token server accepts as `Authorization: Bearer` (identity tokens), → username. */
  readonly refreshTokens?: Readonly<Record<string, string>>
  /** Repositories anyone may pull; every other repository needs a known user. */
  readonly publicRepos?: readonly string[]
  /** Repositories the registry refuses with 403 even with a valid token. */
  readonly forbiddenRepos?: readonly string[]
  /** `expires_in` of issued tokens; omitted from the answer when undefined. */
  readonly expiresIn?: number
  readonly tokenField?: 'token' | 'access_token' | 'both'
  /** Realm as sent in challenges: an absolute URL or a path relative to the registry. */
  readonly realm?: 'absolute' | 'relative'
}

interface Grant {
  readonly user: string | undefined
  readonly scopes: readonly string[]
}

export const ERROR_BODY = (code: string) => JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] })

/**
 * A registry and its token server in one Fastify app on 127.0.0.1, close enough to
 * distribution + a Docker token server for the origin client's auth paths.
 */
export class FakeRegistry {
  readonly opts: FakeRegistryOptions
  readonly app: FastifyInstance
  readonly seen: Seen[] = []
  readonly tokenRequests: Seen[] = []
  readonly issued = new Map<string, Grant>()
  readonly uploads = new Map<string, Buffer>()
  url = ''
  #n = 0

  constructor(opts: FakeRegistryOptions) {
    this.opts = opts
    this.app = Fastify()
    this.app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    this.app.get('/token', (req, reply) => this.#token(req, reply))
    this.app.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      url: '/v2/*',
      exposeHeadRoute: false,
      handler: (req, reply) => this.#registry(req, reply),
    })
  }

  async start(): Promise<this> {
    await this.app.listen({ host: '127.0.0.1', port: 0 })
    this.url = `http://127.0.0.1:${(this.app.server.address() as AddressInfo).port}`
    return this
  }

  get upstream(): Upstream {
    return { registry: new URL(this.url).host, baseUrl: new URL(this.url) }
  }

  async stop(): Promise<void> {
    await this.app.close()
  }

  /** Registry requests carrying this Authorization value. */
  sentWith(authorization: string): Seen[] {
    return this.seen.filter((s) => s.authorization === authorization)
  }

  revokeAll(): void {
    this.issued.clear()
  }

  #realm(): string {
    return this.opts.realm === 'relative' ? '/token' : `${this.url}/token`
  }

  #basicUser(header: string | undefined): string | undefined | null {
    if (header === undefined) return undefined
    const m = /^Basic (.+)$/.exec(header)
    if (m === null) return null
    const [user, pass] = Buffer.from(m[1]!, 'base64').toString().split(':')
    return user !== undefined && this.opts.users?.[user] === pass ? user : null
  }

  #token(req: FastifyRequest, reply: FastifyReply) {
    const authorization = req.headers.authorization
    this.tokenRequests.push({ method: req.method, url: req.url, authorization, headers: req.headers })
    let user: string | undefined
    if (authorization?.startsWith('Bearer ')) {
      user = this.opts.refreshTokens?.[authorization.slice(7)]
      if (user === undefined) return reply.code(401).send({ details: 'bad refresh token' })
    } else {
      const u = this.#basicUser(authorization)
      if (u === null) return reply.code(401).send({ details: 'incorrect username or password' })
      user = u
    }
    const q = new URL(req.url, this.url).searchParams
    const scopes = q.getAll('scope').filter((s) => {
      const repo = s.split(':')[1] ?? ''
      return user !== undefined || (this.opts.publicRepos ?? []).includes(repo)
    })
    const token = `tk-${++this.#n}-${user ?? 'anon'}`
    this.issued.set(token, { user, scopes })
    const body: Record<string, unknown> = {}
    const field = this.opts.tokenField ?? 'both'
    if (field !== 'access_token') body['token'] = token
    if (field !== 'token') body['access_token'] = token
    if (this.opts.expiresIn !== undefined) body['expires_in'] = this.opts.expiresIn
    return reply.send(body)
  }

  #challenge(reply: FastifyReply, scope: string | undefined, error?: string) {
    const code = error === undefined ? 'UNAUTHORIZED' : 'DENIED'
    if (this.opts.auth === 'basic') reply.header('www-authenticate', 'Basic realm="fake registry"')
    else {
      const parts = [`realm="${this.#realm()}"`, 'service="fake"']
      if (scope !== undefined) parts.push(`scope="${scope}"`)
      if (error !== undefined) parts.push(`error="${error}"`)
      reply.header('www-authenticate', `Bearer ${parts.join(',')}`)
    }
    return reply.code(401).type('application/json').send(ERROR_BODY(code))
  }

  /** True when allowed; otherwise the reply has been sent. */
  #authorize(req: FastifyRequest, reply: FastifyReply, repo: string | undefined, action: string): boolean {
    const { auth, publicRepos = [] } = this.opts
    if (auth === 'none') return true
    const scope = repo === undefined ? undefined : `repository:${repo}:${action === 'pull' ? 'pull' : 'pull,push'}`
    const header = req.headers.authorization
    if (auth === 'basic') {
      const user = this.#basicUser(header)
      if (typeof user === 'string' || (user === undefined && repo !== undefined && publicRepos.includes(repo))) {
        return true
      }
      this.#challenge(reply, scope)
      return false
    }
    const grant = header?.startsWith('Bearer ') ? this.issued.get(header.slice(7)) : undefined
    if (grant === undefined) {
      this.#challenge(reply, scope, header?.startsWith('Bearer ') ? 'invalid_token' : undefined)
      return false
    }
    if (repo === undefined) return true
    const ok = grant.scopes.some((s) => {
      const [type, name, actions] = s.split(':')
      return type === 'repository' && name === repo && (actions ?? '').split(',').includes(action)
    })
    if (!ok) this.#challenge(reply, scope, 'insufficient_scope')
    return ok
  }

  async #registry(req: FastifyRequest, reply: FastifyReply) {
    this.seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization, headers: req.headers })
    const url = new URL(req.url, this.url)
    const path = url.pathname.slice('/v2/'.length)
    if (path === '') {
      if (!this.#authorize(req, reply, undefined, 'pull')) return reply
      return reply.send({})
    }
    const m = /^(.+)\/(manifests|blobs)\/(.+)$/.exec(path)
    if (m === null) return reply.code(404).send(ERROR_BODY('NAME_UNKNOWN'))
    const [, repo, kind, rest] = m as unknown as [string, string, string, string]
    const push = req.method !== 'GET' && req.method !== 'HEAD'
    if (!this.#authorize(req, reply, repo, push ? 'push' : 'pull')) return reply
    if ((this.opts.forbiddenRepos ?? []).includes(repo)) {
      return reply.code(403).type('application/json').send(ERROR_BODY('DENIED'))
    }
    if (kind === 'manifests') {
      return reply.type('application/vnd.oci.image.manifest.v1+json').send(JSON.stringify({ repo, ref: rest }))
    }
    if (req.method === 'POST' && rest === 'uploads/') {
      return reply.code(202).header('location', `/v2/${repo}/blobs/uploads/u1?_state=s1`).send()
    }
    if (req.method === 'PUT' && rest.startsWith('uploads/')) {
      this.uploads.set(rest, req.body as Buffer)
      return reply
        .code(201)
        .header('location', `/v2/${repo}/blobs/${url.searchParams.get('digest')}`)
        .send()
    }
    return reply.type('application/octet-stream').send(Buffer.from(`blob ${rest}`))
  }
}

/** Starts a bare Fastify app on 127.0.0.1 for one-off behaviours (retries, redirects). */
export async function startApp(setup: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  setup(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

export function upstreamOf(url: string): Upstream {
  return { registry: new URL(url).host, baseUrl: new URL(url) }
}

export async function text(body: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = []
  for await (const c of body) parts.push(Buffer.from(c as Buffer))
  return Buffer.concat(parts).toString()
}
