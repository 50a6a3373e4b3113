import type { Readable } from 'node:stream'
import { RegistryError } from '../shared/oci/index.ts'
import {
  type OriginRequest,
  type OriginResponse,
  type OriginStatusError,
  originStatusError,
  type Upstream,
} from '../shared/origin/index.ts'
import { OriginUnavailableError } from './errors.ts'

/** The slice of the origin client the agent needs; tests hand in a stub. */
export interface OriginPort {
  request(upstream: Upstream, req: OriginRequest): Promise<OriginResponse>
}

/** Reads at most `limit` bytes of a body and drops the rest. */
export async function readBody(body: Readable, limit: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const parts: Buffer[] = []
  let n = 0
  let truncated = false
  for await (const chunk of body) {
    const b = chunk as Buffer
    if (n + b.byteLength > limit) {
      truncated = true
      body.destroy()
      break
    }
    parts.push(b)
    n += b.byteLength
  }
  return { bytes: Buffer.concat(parts), truncated }
}

/** Sends a request; network failures and 5xx become OriginUnavailableError. */
export async function originRequest(
  origin: OriginPort,
  upstream: Upstream,
  req: OriginRequest,
): Promise<OriginResponse> {
  let res: OriginResponse
  try {
    res = await origin.request(upstream, req)
  } catch (err) {
    // A RegistryError (e.g. a path the origin client refuses to build) is the client's fault, not an outage.
    if ((err as { name?: string }).name === 'AbortError' || err instanceof RegistryError) throw err
    throw new OriginUnavailableError(`origin ${upstream.registry} unreachable: ${(err as Error).message}`, {
      cause: err,
    })
  }
  if (res.status >= 500) {
    res.body.destroy()
    throw new OriginUnavailableError(`origin ${upstream.registry} answered ${res.status}`)
  }
  return res
}

/** Turns a non-success origin response into an OriginStatusError carrying its (small) body. */
export function statusError(res: OriginResponse): Promise<OriginStatusError> {
  return originStatusError(res)
}
