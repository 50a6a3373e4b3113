import { RegistryError } from '../shared/oci/index.ts'

/**
 * The origin refused (401, 403, 404, 429...). The agent hands the origin's answer to the client unchanged, so the
 * origin keeps deciding who may read what. One error for agent and seeder, defined with the origin client.
 */
export { OriginStatusError } from '../shared/origin/index.ts'

/** The origin could not be reached or failed (network error, 5xx): stale content may stand in. */
export class OriginUnavailableError extends Error {
  override name = 'OriginUnavailableError'
  readonly code = 'ORIGIN_UNAVAILABLE'
}

/**
 * A write failed because the file system is out of room (or the user's disk quota is spent): a Node error with its
 * errno code, or the index database's, which only says so in its message.
 */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 4; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown }
    if (code === 'ENOSPC' || code === 'EDQUOT') return true
    if (code === 'LEVEL_IO_ERROR' && /no space left on device|disk quota exceeded/i.test(String(message))) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

/**
 * The cache cannot take this blob: its disk is full, or its quota is held by blobs being read and downloads under
 * way. 507 Insufficient Storage with an OCI body, so a runtime falls back to its next mirror or the origin; the
 * agent keeps serving what it holds.
 */
export class CacheFullError extends RegistryError {
  override name = 'CacheFullError'
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('UNAVAILABLE', message, { status: 507, ...opts })
  }
}
