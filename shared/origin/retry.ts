import { setTimeout as delay } from 'node:timers/promises'

export interface RetryPolicy {
  /** Tries in all, the first included: 1 means never retry. */
  readonly attempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
}

/**
 * Milliseconds to wait before retry number `retry` (0 for the first retry): exponential, capped,
 * with "equal jitter" (half fixed, half random) so a fleet that failed together does not retry together.
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry)
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined
  const v = value.trim()
  if (/^[0-9]+$/.test(v)) return Number(v) * 1000
  // An HTTP date always names the weekday and a GMT time; refusing anything else keeps
  // Date.parse's leniency ("1.5", "2") from turning junk into a date.
  if (!/^[A-Za-z]{3,9},? .*GMT$/.test(v)) return undefined
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** undici's codes for its three timeouts; the node:http exchange (node-exchange.ts) reports the same. */
export const CONNECT_TIMEOUT = 'UND_ERR_CONNECT_TIMEOUT'
export const HEADERS_TIMEOUT = 'UND_ERR_HEADERS_TIMEOUT'
export const BODY_TIMEOUT = 'UND_ERR_BODY_TIMEOUT'

// Failures where nothing reached the application: safe to try again for GET/HEAD.
const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  CONNECT_TIMEOUT,
  HEADERS_TIMEOUT,
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
])

export function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && RETRYABLE_CODES.has(code)
}

export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) {
    signal?.throwIfAborted()
    return
  }
  await delay(ms, undefined, signal === undefined ? undefined : { signal })
}
