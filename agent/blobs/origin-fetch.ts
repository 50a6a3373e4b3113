import type { Readable } from 'node:stream'
import type { Metrics } from '../../shared/metrics/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { DigestMismatchError } from '../../shared/oci/index.ts'
import type { Upstream } from '../../shared/origin/index.ts'
import { type ContentStore, type PartialBlob, StoreFullError } from '../../shared/store/index.ts'
import type { Authorizer } from '../authz.ts'
import { CacheFullError, isDiskFull, OriginUnavailableError } from '../errors.ts'
import { type OriginPort, originRequest, statusError } from '../origin-port.ts'
import type { Download } from './download.ts'

/** Origin bytes gathered before one disk append. */
const APPEND_BATCH_BYTES = 1024 * 1024

export interface OriginFetchOptions {
  readonly origin: OriginPort
  readonly store: ContentStore
  readonly authorizer: Authorizer
  readonly metrics: Metrics
  readonly chunkSize: number
  readonly upstream: Upstream
  readonly name: string
  readonly digest: Digest
  readonly authorization: string | undefined
  readonly mediaType?: string
  /** Resumes after a connection drops mid-body, each time from the bytes already on disk. */
  readonly resumeAttempts?: number
  /** Wraps the origin body (rate limiting). */
  readonly throttle?: (body: Readable) => Readable
}

/**
 * Fills a download from the origin: streams the body into the partial file (clients read it
 * from there as it grows), resumes with a Range request after a dropped connection, and commits
 * only when the whole blob matches its digest.
 */
export async function fetchFromOrigin(dl: Download, o: OriginFetchOptions): Promise<void> {
  const attempts = o.resumeAttempts ?? 3
  let partial: PartialBlob | undefined = await resumePartial(o).catch(async (err: unknown) => {
    throw await failed(undefined, err, o)
  })
  if (partial !== undefined) dl.attach(partial)
  for (let attempt = 0; ; attempt++) {
    // append() writes at appendOffset (chunks the swarm already wrote are skipped, not rewritten).
    const from = partial?.appendOffset ?? 0
    o.metrics.originFetches.inc({ kind: 'blob' })
    const res = await originRequest(o.origin, o.upstream, {
      method: 'GET',
      path: `${o.name}/blobs/${o.digest}`,
      headers: from > 0 ? { range: `bytes=${from}-` } : {},
      ...(o.authorization === undefined ? {} : { clientAuthorization: o.authorization }),
      scope: `repository:${o.name}:pull`,
    })
    if (res.status !== 200 && res.status !== 206) throw await statusError(res)
    o.authorizer.granted(o.upstream, o.name, o.digest, o.authorization)
    if (partial !== undefined && from > 0 && res.status === 200) {
      // The origin ignored our Range: start over rather than trust an offset.
      await partial.discard()
      partial = undefined
    }
    if (partial === undefined) {
      const size = Number(res.headers['content-length'])
      if (!Number.isSafeInteger(size) || size < 0) {
        res.body.destroy()
        throw new OriginUnavailableError('origin sent a blob without a valid Content-Length')
      }
      try {
        partial = await o.store.openPartial(o.digest, { size, chunkSize: o.chunkSize })
      } catch (err) {
        res.body.destroy()
        throw await failed(undefined, err, o)
      }
      dl.attach(partial)
    }
    const body = o.throttle === undefined ? res.body : o.throttle(res.body)
    // undici yields ~64 KiB pieces; one disk append each costs ~1 ms on a busy event loop, so
    // they are gathered up to APPEND_BATCH_BYTES (clients still see bytes within one batch).
    let batch: Uint8Array[] = []
    let batched = 0
    // Tells a failing store from a failing origin connection when the loop below throws.
    let storeFailed = false
    const flush = async (p: PartialBlob) => {
      if (batched === 0) return
      const bytes = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched)
      batch = []
      batched = 0
      try {
        await p.append(bytes)
      } catch (err) {
        storeFailed = true
        throw err
      }
    }
    try {
      for await (const chunk of body) {
        const b = chunk as Uint8Array
        if (partial.appendOffset + batched + b.byteLength > partial.size) {
          throw new DigestMismatchError(o.digest, `more than ${partial.size} bytes`)
        }
        batch.push(b)
        batched += b.byteLength
        o.metrics.bytesReceived.inc({ source: 'origin' }, b.byteLength)
        if (batched >= APPEND_BATCH_BYTES) await flush(partial)
      }
      await flush(partial)
    } catch (err) {
      body.destroy()
      if (err instanceof DigestMismatchError || isDiskFull(err)) throw await failed(partial, err, o)
      // The origin broke off: what arrived before is kept (the digest check at commit still covers it), so the
      // resume asks only for the rest.
      if (!storeFailed) await flush(partial).catch(() => {})
      if (attempt + 1 >= attempts) {
        const cause = storeFailed
          ? err
          : new OriginUnavailableError(
              `origin broke off the blob at ${partial.appendOffset} of ${partial.size} bytes: ${(err as Error).message}`,
              { cause: err },
            )
        throw await failed(partial, cause, o)
      }
      continue
    }
    if (partial.appendOffset < partial.size) {
      if (attempt + 1 >= attempts) {
        throw new OriginUnavailableError(`origin closed the blob at ${partial.appendOffset} of ${partial.size} bytes`)
      }
      continue
    }
    try {
      await partial.commit(o.mediaType === undefined ? {} : { mediaType: o.mediaType })
    } catch (err) {
      throw await failed(isDiskFull(err) ? partial : undefined, err, o)
    }
    return
  }
}

async function resumePartial(o: OriginFetchOptions): Promise<PartialBlob | undefined> {
  const known = (await o.store.listPartials()).find((p) => p.digest === o.digest)
  if (known === undefined) return undefined
  return o.store.openPartial(o.digest, { size: known.size, chunkSize: known.chunkSize })
}

async function failed(partial: PartialBlob | undefined, err: unknown, o: OriginFetchOptions): Promise<unknown> {
  if (err instanceof DigestMismatchError) {
    o.metrics.digestFailures.inc({ source: 'origin' })
    // Bytes that failed their digest are never kept, not even to resume from.
    await partial?.discard().catch(() => {})
  }
  if (isDiskFull(err)) {
    // Kept, it would hold the disk full for every other download; resuming it would only fill it again.
    await partial?.discard().catch(() => {})
    return new CacheFullError("the agent's cache disk is full", { cause: err })
  }
  if (err instanceof StoreFullError) {
    return new CacheFullError(err.message, { cause: err })
  }
  return err
}
