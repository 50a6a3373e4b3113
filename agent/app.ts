import type { IncomingMessage } from 'node:http'
import type { Duplex, Readable } from 'node:stream'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from '../shared/log/index.ts'
import type { Metrics } from '../shared/metrics/index.ts'
import { parseV2Path, RegistryError, type V2Route } from '../shared/oci/index.ts'
import { lazySchemaCompilers, type OpsInit, opsRoutes } from '../shared/ops/index.ts'
import { resolveUpstream, type Upstream, upstreamName } from '../shared/origin/index.ts'
import type { BlobService } from './blobs/service.ts'
import { OriginStatusError, OriginUnavailableError } from './errors.ts'
import { type OriginPort, originRequest, statusError } from './origin-port.ts'
import type { ManifestService } from './registry/manifests.ts'
import { passThrough } from './registry/passthrough.ts'
import { nodeHttp } from '../shared/process/node-http.ts'

export interface AppDeps {
  readonly log: Logger
  readonly metrics: Metrics
  readonly origin: OriginPort
  readonly blobs: BlobService
  readonly manifests: ManifestService
  readonly defaultOrigin: URL
  readonly insecureRegistries: readonly string[]
  readonly readOnly: boolean
  /** /healthz, /readyz, /metrics, /status and the status page: the mirror port keeps them all. */
  readonly ops: Omit<OpsInit, 'metrics'>
}

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
const WRITE_METHODS: readonly Method[] = ['PUT', 'POST', 'PATCH', 'DELETE']
const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' }

declare module 'fastify' {
  interface FastifyRequest {
    shoalRoute?: string
  }
}

/** Builds the agent's HTTP app without listening; tests drive it with `app.inject()`. */
export function buildApp(deps: AppDeps) {
  const app = Fastify({
    loggerInstance: deps.log,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    // Shutdown closes idle keep-alive sockets instead of waiting out their timeout.
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    // No route here declares a schema: ajv and fast-json-stringify stay unloaded.
    schemaController: { compilersFactory: lazySchemaCompilers() },
    routerOptions: { maxParamLength: 2048 },
    // Oversized request heads are refused by Node before any handler runs.
    http: { maxHeaderSize: 16 * 1024 },
    // Requests that never reach a route (unparseable HTTP, oversized heads, undecodable paths)
    // still get an OCI error body, not Fastify's own JSON.
    clientErrorHandler: clientError,
    frameworkErrors: (err, req, reply) => {
      reply.headers(API_VERSION)
      sendOci(reply, routeError(req.raw.url ?? '/', err.statusCode))
    },
  })
  // CONNECT bypasses the request handler; without this Node drops the socket without an answer.
  app.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    writeRawError(socket, new RegistryError('UNSUPPORTED', 'method not allowed here'))
  })

  // Request bodies (pushes) stream straight to the origin: never parsed, never buffered here.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req: FastifyRequest, payload: IncomingMessage, done) => done(null, payload))

  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.httpRequests.inc({ route: req.shoalRoute ?? 'other', method: req.method, status: reply.statusCode })
  })

  app.setErrorHandler((err, req, reply) => sendError(err, req, reply, deps.log))
  app.setNotFoundHandler((req, reply) => {
    sendOci(
      reply,
      new RegistryError('NAME_UNKNOWN', 'not found', { status: 404, detail: { path: req.url.slice(0, 200) } }),
    )
  })

  void app.register(opsRoutes({ ...deps.ops, metrics: deps.metrics }))

  const methods: Method[] = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE']
  for (const url of ['/v2', '/v2/', '/v2/*']) {
    app.route({ method: methods, url, handler: (req, reply) => handleV2(deps, req, reply) })
  }
  return app
}

async function handleV2(deps: AppDeps, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const raw = req.raw.url ?? '/'
  const q = raw.indexOf('?')
  const path = q === -1 ? raw : raw.slice(0, q)
  const query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1))
  const method = req.method as Method
  reply.headers(API_VERSION)
  req.shoalRoute = 'v2'
  const nsParam = query.get('ns') ?? undefined
  query.delete('ns')
  // `?ns=` (containerd) names the upstream and leaves the path whole; without it a leading registry-host
  // component of the path does (the mirror locations `shoal configure` writes for other clients).
  const route = parseV2Path(path, { registryPrefix: nsParam === undefined })
  req.shoalRoute = route.kind
  // Carried into rewritten upload Locations as `?ns=`, so the next request reaches the same upstream.
  const ns = nsParam ?? ('registry' in route ? route.registry : undefined)
  const upstream = resolveUpstream(ns, {
    defaultOrigin: deps.defaultOrigin,
    insecureRegistries: deps.insecureRegistries,
  })
  const signal = requestSignal(reply)
  const authorization = req.headers.authorization

  if (WRITE_METHODS.includes(method)) {
    if (deps.readOnly) throw new RegistryError('UNSUPPORTED', 'this mirror is read-only')
    if (route.kind === 'base' || route.kind === 'catalog' || route.kind === 'tags') {
      throw new RegistryError('UNSUPPORTED', 'method not allowed here')
    }
    return relay(deps, req, reply, route, upstream, query, ns, signal)
  }
  switch (route.kind) {
    case 'base':
      return baseCheck(deps, reply, upstream, authorization, signal)
    case 'manifest': {
      const r = await deps.manifests.serve({
        method: method === 'HEAD' ? 'HEAD' : 'GET',
        upstream,
        name: upstreamName(upstream, route.name),
        reference: route.reference,
        accept: req.headers.accept,
        authorization,
        signal,
      })
      reply.code(r.status).headers(r.headers)
      // HEAD carries the GET's Content-Length; Fastify must not replace it with 0.
      return method === 'HEAD' ? reply.send() : reply.send(r.body)
    }
    case 'blob': {
      const r = await deps.blobs.serve({
        method: method === 'HEAD' ? 'HEAD' : 'GET',
        upstream,
        name: upstreamName(upstream, route.name),
        digest: route.digest,
        range: typeof req.headers.range === 'string' ? req.headers.range : undefined,
        authorization,
        signal,
      })
      reply.code(r.status).headers(r.headers)
      return method === 'HEAD' ? reply.send() : reply.send(r.body)
    }
    default:
      return relay(deps, req, reply, route, upstream, query, ns, signal)
  }
}

async function relay(
  deps: AppDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  route: V2Route,
  upstream: Upstream,
  query: URLSearchParams,
  ns: string | undefined,
  signal: AbortSignal,
): Promise<unknown> {
  const method = req.method as Method
  const name = 'name' in route ? upstreamName(upstream, route.name) : undefined
  const path = relayPath(route, name)
  const scope =
    name === undefined ? undefined : `repository:${name}:${WRITE_METHODS.includes(method) ? 'pull,push' : 'pull'}`
  const r = await passThrough(deps.origin, {
    method,
    upstream,
    path,
    query,
    headers: req.headers,
    body: req.body as Readable | undefined,
    scope,
    signal,
    ns,
  })
  reply.code(r.status).headers(r.headers)
  if (method === 'HEAD') {
    r.body.destroy()
    return reply.send()
  }
  return reply.send(r.body)
}

/**
 * `GET /v2/` asks the origin, so a client learns the origin's challenge here and sends its
 * credentials with every later request (skopeo and podman only authenticate after a challenge).
 * The origin client pings with the client's credential or a configured one, never with an
 * anonymous token, which would pass and hide the challenge from a client that has credentials.
 * With the origin unreachable the mirror still answers 200: cached content stays pullable.
 */
async function baseCheck(
  deps: AppDeps,
  reply: FastifyReply,
  upstream: Upstream,
  authorization: string | undefined,
  signal: AbortSignal,
): Promise<unknown> {
  try {
    const res = await originRequest(deps.origin, upstream, {
      method: 'GET',
      path: '',
      ...(authorization === undefined ? {} : { clientAuthorization: authorization }),
      signal,
    })
    if (res.status === 401 || res.status === 403) throw await statusError(res)
    res.body.destroy()
  } catch (err) {
    if (!(err instanceof OriginUnavailableError)) throw err
  }
  return reply.code(200).header('content-type', 'application/json').send('{}')
}

function relayPath(route: V2Route, name: string | undefined): string {
  switch (route.kind) {
    case 'catalog':
      return '_catalog'
    case 'tags':
      return `${name}/tags/list`
    case 'manifest':
      return `${name}/manifests/${route.reference.kind === 'tag' ? route.reference.tag : route.reference.digest}`
    case 'blob':
      return `${name}/blobs/${route.digest}`
    case 'upload':
      return `${name}/blobs/uploads/${route.rest}`
    case 'referrers':
      return `${name}/referrers/${route.digest}`
    case 'base':
      return ''
  }
}

/** Aborts when the client goes away before the response is done (not when its request body ends). */
function requestSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort()
  })
  return ac.signal
}

function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply, log: Logger): void {
  if (reply.sent || reply.raw.headersSent) {
    // Bytes are already on the wire: the only honest end is an aborted connection.
    reply.raw.destroy(err instanceof Error ? err : undefined)
    return
  }
  if ((err as { name?: unknown }).name === 'AbortError') {
    // The client went away (its request signal fired): nobody is left to answer, and nothing failed.
    if (req.raw.destroyed || reply.raw.destroyed) {
      log.debug({ url: req.url.slice(0, 200) }, 'client went away')
      reply.raw.destroy()
      return
    }
    // Otherwise the agent is shutting down under this request.
    sendOci(reply, new RegistryError('UNAVAILABLE', 'agent shutting down'))
    return
  }
  if (err instanceof OriginStatusError) {
    reply.code(err.status).headers(err.headers)
    if (err.body.byteLength > 0 && req.method !== 'HEAD') {
      reply.send(err.body)
      return
    }
    const code =
      err.status === 401
        ? 'UNAUTHORIZED'
        : err.status === 403
          ? 'DENIED'
          : err.status === 429
            ? 'TOOMANYREQUESTS'
            : 'NAME_UNKNOWN'
    reply
      .header('content-type', 'application/json')
      .send(new RegistryError(code, `origin answered ${err.status}`).toBody())
    return
  }
  if (err instanceof RegistryError) {
    sendOci(reply, err)
    return
  }
  if (err instanceof OriginUnavailableError) {
    log.warn({ err: err.message }, 'origin unavailable')
    sendOci(reply, new RegistryError('UNAVAILABLE', 'origin registry unavailable'))
    return
  }
  const status = (err as { statusCode?: number }).statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    sendOci(
      reply,
      new RegistryError(status === 413 ? 'SIZE_INVALID' : 'UNSUPPORTED', (err as Error).message, { status }),
    )
    return
  }
  log.error({ err }, 'request failed')
  sendOci(reply, new RegistryError('UNKNOWN', 'internal error'))
}

/**
 * The precise error for a path the router could not even decode: every grammar excludes `%`,
 * so the OCI path parser names what is wrong with it.
 */
function routeError(url: string, status: number | undefined): RegistryError {
  const path = url.split('?')[0] ?? '/'
  try {
    parseV2Path(path)
  } catch (err) {
    if (err instanceof RegistryError) return err
  }
  return new RegistryError('NAME_INVALID', 'malformed request path', { status: status ?? 400 })
}

/** Node's clientError, answered like Fastify's default but with an OCI body. */
function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new RegistryError('SIZE_INVALID', 'request header fields too large', { status: 431 })
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new RegistryError('UNSUPPORTED', 'request timeout', { status: 408 })
        : new RegistryError('UNSUPPORTED', 'malformed HTTP request', { status: 400 })
  // Node's own check: a response already under way on this socket must not get a second head.
  const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (current?.headersSent === true) {
    socket.destroy(err)
    return
  }
  writeRawError(socket, e, err)
}

function writeRawError(socket: Duplex, e: RegistryError, cause?: Error): void {
  if (socket.writable) {
    const body = JSON.stringify(e.toBody())
    socket.write(
      `HTTP/1.1 ${e.status} ${nodeHttp.STATUS_CODES[e.status] ?? ''}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `docker-distribution-api-version: registry/2.0\r\nconnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy(cause)
}

function sendOci(reply: FastifyReply, err: RegistryError): void {
  reply.code(err.status).headers(err.headers).header('content-type', 'application/json').send(err.toBody())
}
