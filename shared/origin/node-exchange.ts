import type { Agent as HttpAgent, ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { nodeHttp } from '../process/node-http.ts'
// The failures undici reports for the same cases carry these codes, so the transport's one rule (`retry.ts`) reads
// both clients' failures alike.
import { BODY_TIMEOUT, CONNECT_TIMEOUT, HEADERS_TIMEOUT } from './retry.ts'

/** One request as the transport sends it: every header already set, no body. */
export interface WireRequest {
  readonly method: 'GET' | 'HEAD'
  readonly headers: Readonly<Record<string, string>>
  readonly signal: AbortSignal | null
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
}

/** An answer, from either HTTP client: header names in lower case, a repeated header as an array. */
export interface WireResponse {
  readonly statusCode: number
  readonly headers: IncomingHttpHeaders
  readonly body: Readable
}

/**
 * Origin GET and HEAD requests through Node's own `http` client, which every agent and seeder has loaded anyway. The
 * transport (`http.ts`) decides what goes here and applies the same retries, redirects and authentication to it;
 * this class only sends one request, with undici's three timeouts: connecting, waiting for the headers, and the
 * longest silence inside the body. Why (bench/datapath, README "Warm, the first request"): an agent's first origin
 * request (the authorization HEAD of a cached blob, the base endpoint) no longer waits 75–100 ms for undici to load,
 * and a blob body costs about half undici's CPU to receive. Each body piece it hands out is memory of its own (Node's
 * parser copies it out of the socket's read), as `OriginResponse.bodyOwned` requires.
 */
/**
 * Kept-alive connections, closed after 4 s idle as undici's are (a registry behind a proxy may drop idle ones
 * silently; a request on such a socket fails and is retried after a pause).
 */
const POOL = { keepAlive: true, timeout: 4000 }

export class NodeExchange {
  readonly #connectTimeoutMs: number
  #http: HttpAgent | undefined
  #https: HttpAgent | undefined

  constructor(opts: { readonly connectTimeoutMs: number }) {
    this.#connectTimeoutMs = opts.connectTimeoutMs
  }

  request(url: URL, init: WireRequest): Promise<WireResponse> {
    init.signal?.throwIfAborted()
    const tls = url.protocol === 'https:'
    const agent = tls
      ? (this.#https ??= new (process.getBuiltinModule('node:https').Agent)(POOL))
      : (this.#http ??= new nodeHttp.Agent(POOL))
    const send = tls ? process.getBuiltinModule('node:https').request : nodeHttp.request
    return new Promise<WireResponse>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const fail = (req: ClientRequest, code: string, what: string) => () =>
        req.destroy(Object.assign(new Error(`${what} timed out`), { code }))
      const req = send(url, { method: init.method, headers: init.headers, agent })
      const onAbort = () => req.destroy(init.signal!.reason as Error)
      init.signal?.addEventListener('abort', onAbort, { once: true })
      const done = () => {
        clearTimeout(timer)
        init.signal?.removeEventListener('abort', onAbort)
      }
      req.once('socket', (socket) => {
        const waitHeaders = () => {
          clearTimeout(timer)
          timer = setTimeout(fail(req, HEADERS_TIMEOUT, 'waiting for headers'), init.headersTimeoutMs)
        }
        if (!socket.connecting) return waitHeaders()
        timer = setTimeout(fail(req, CONNECT_TIMEOUT, 'connecting'), this.#connectTimeoutMs)
        socket.once('connect', waitHeaders)
      })
      req.on('error', (err) => {
        done()
        reject(err)
      })
      req.once('response', (res: IncomingMessage) => {
        clearTimeout(timer)
        // An abort after the headers ends the body, as undici's does.
        res.once('close', done)
        const headers = headersOf(res.rawHeaders)
        if (init.method === 'HEAD') {
          // No body: read the (empty) message to its end so the socket goes back to the pool.
          res.resume()
          resolve({ statusCode: res.statusCode!, headers, body: Readable.from([]) })
          return
        }
        // The longest silence of the origin, as undici's: a socket idle because the reader is behind (bytes wait
        // in the body's buffer, so Node stopped reading) is not the origin's silence; wait again. Not every such
        // case is told apart yet: a reader paused 3 s over a 1 s timeout was still cut now and then on a loaded
        // machine, so no test holds this; the default timeout is 60 s.
        res.setTimeout(init.bodyTimeoutMs, () => {
          if (res.readableLength > 0) {
            res.socket?.setTimeout(init.bodyTimeoutMs)
            return
          }
          res.destroy(Object.assign(new Error('body timed out'), { code: BODY_TIMEOUT }))
        })
        resolve({ statusCode: res.statusCode!, headers, body: res })
      })
      req.end()
    })
  }

  /** Stops: closes the pooled connections. */
  stop(): void {
    this.#http?.destroy()
    this.#https?.destroy()
  }
}

/** Header names in lower case; a repeated header as an array of its values (undici's shape). */
function headersOf(raw: readonly string[]): IncomingHttpHeaders {
  // No prototype: a header named `constructor` or `__proto__` is a header like any other.
  const out = Object.create(null) as Record<string, string | string[]>
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    const value = raw[i + 1]!
    const had = out[name]
    out[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value]
  }
  return out as IncomingHttpHeaders
}
