import { pipeline, type Readable, Transform } from 'node:stream'
import type { Dispatcher } from 'undici'
import { OriginError } from './errors.ts'
import type { NodeExchange, WireResponse } from './node-exchange.ts'
import { loadUndici } from '../process/undici.ts'
import { backoffDelayMs, isRetryableNetworkError, parseRetryAfterMs, type RetryPolicy, sleep } from './retry.ts'

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
export type HeaderMap = Record<string, string | string[]>

export interface TransportOptions {
  /** Called at each request: a client may make its dispatcher only when first needed. */
  readonly dispatcher: () => Dispatcher | Promise<Dispatcher>
  /** Where GET and HEAD requests go (see `node-exchange.ts`); absent: every request through undici. */
  readonly node?: NodeExchange | undefined
  readonly userAgent: string
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
  readonly retry: RetryPolicy
  readonly random?: () => number
}

export interface SendInit {
  readonly method: Method
  readonly headers: Readonly<Record<string, string>>
  readonly body?: Readable | Uint8Array | undefined
  readonly signal?: AbortSignal | undefined
  /** Only requests that can be repeated safely are retried. */
  readonly retry: boolean
  /** For error messages. */
  readonly registry: string
}

const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 500, 502, 503, 504])
const DRAIN_LIMIT_BYTES = 64 * 1024

/** One HTTP exchange with bounded retries; any status is an answer, only "no answer" throws. */
export class Transport {
  readonly #o: TransportOptions

  constructor(opts: TransportOptions) {
    this.#o = opts
  }

  /**
   * A GET or HEAD goes through Node's own HTTP client, when the transport has one: an agent or seeder has it loaded
   * anyway, so no origin request waits for undici to load, and it receives a body for about half undici's CPU
   * (bench/datapath). A request that sends a body (an upload relayed by the agent) goes through undici. The
   * retries, timeouts and status rules below are the same for both.
   */
  async send(url: URL, init: SendInit): Promise<WireResponse> {
    const { retry } = this.#o
    const node = init.body === undefined && (init.method === 'GET' || init.method === 'HEAD') ? this.#o.node : undefined
    for (let attempt = 1; ; attempt++) {
      const mayRetry = init.retry && attempt < retry.attempts
      let res: WireResponse
      try {
        const headers = { 'user-agent': this.#o.userAgent, ...init.headers }
        const signal = init.signal ?? null
        const { headersTimeoutMs, bodyTimeoutMs } = this.#o
        if (node !== undefined) {
          const method = init.method as 'GET' | 'HEAD'
          res = await node.request(url, { method, headers, signal, headersTimeoutMs, bodyTimeoutMs })
        } else {
          const { request } = await loadUndici()
          res = await request(url, {
            dispatcher: await this.#o.dispatcher(),
            method: init.method,
            headers,
            body: init.body ?? null,
            signal,
            headersTimeout: headersTimeoutMs,
            bodyTimeout: bodyTimeoutMs,
          })
        }
      } catch (err) {
        if (init.signal?.aborted) throw err
        if (mayRetry && isRetryableNetworkError(err)) {
          await sleep(backoffDelayMs(attempt - 1, retry, this.#o.random), init.signal)
          continue
        }
        const msg = `${init.method} ${redactUrl(url)}: ${(err as Error).message}`
        throw new OriginError('ORIGIN_UNREACHABLE', init.registry, msg, { cause: err })
      }
      if (mayRetry && RETRYABLE_STATUS.has(res.statusCode)) {
        const after = parseRetryAfterMs(headerValue(res.headers, 'retry-after'))
        // A server asking for more patience than we allow gets its answer passed on, not hammered.
        if (after === undefined || after <= retry.maxDelayMs) {
          await drain(res.body)
          await sleep(after ?? backoffDelayMs(attempt - 1, retry, this.#o.random), init.signal)
          continue
        }
      }
      return res
    }
  }
}

/** First value of a response header. */
export function headerValue(headers: WireResponse['headers'], name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Reads a small body so the connection can be reused; gives up (destroying it) past a limit. */
export async function drain(body: Readable): Promise<void> {
  let n = 0
  try {
    for await (const chunk of body) {
      n += (chunk as Buffer).byteLength
      // Leaving the loop destroys the body.
      if (n > DRAIN_LIMIT_BYTES) break
    }
  } catch {
    // A broken error body changes nothing for the caller.
  }
}

/** Reads a whole body of at most `limit` bytes; undefined (body destroyed) when it is larger. */
export async function readBounded(
  body: Readable,
  limit: number,
  onBytes?: (n: number) => void,
): Promise<Buffer | undefined> {
  const parts: Buffer[] = []
  let n = 0
  for await (const chunk of body) {
    const b = chunk as Buffer
    onBytes?.(b.byteLength)
    n += b.byteLength
    if (n > limit) {
      body.destroy()
      return undefined
    }
    parts.push(b)
  }
  return Buffer.concat(parts, n)
}

/**
 * The body as a plain Node stream: destroying it ends the exchange quietly (undici's own body
 * emits an AbortError then, which would crash a process that just wanted to drop it). Errors
 * from the origin still arrive, and every byte that passes is reported.
 */
export function wrapBody(body: Readable, onBytes: ((n: number) => void) | undefined): Readable {
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes?.(chunk.byteLength)
      cb(null, chunk)
    },
  })
  pipeline(body, out, () => {})
  return out
}

/** A URL safe for messages: no userinfo, and no query (presigned storage URLs carry signatures there). */
export function redactUrl(url: URL): string {
  return `${url.origin}${url.pathname}`
}

// RFC 9110 §7.6.1 hop-by-hop fields, plus fields this client owns: Authorization (the caller's
// goes in clientAuthorization), Host, Expect, and Accept-Encoding (manifest bytes must arrive
// unencoded to match their digest).
const DROPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
  'authorization',
  'accept-encoding',
])
const DROPPED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

export function requestHeaders(headers: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (headers === undefined) return out
  const named = new Set((headers['connection'] ?? headers['Connection'] ?? '').toLowerCase().split(/\s*,\s*/))
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase()
    if (!DROPPED_REQUEST_HEADERS.has(name) && !named.has(name)) out[name] = v
  }
  return out
}

export function responseHeaders(headers: WireResponse['headers']): HeaderMap {
  const out: HeaderMap = {}
  const conn = headerValue(headers, 'connection') ?? ''
  const named = new Set(conn.toLowerCase().split(/\s*,\s*/))
  for (const [name, v] of Object.entries(headers)) {
    if (v === undefined || DROPPED_RESPONSE_HEADERS.has(name) || named.has(name)) continue
    out[name] = v
  }
  return out
}
