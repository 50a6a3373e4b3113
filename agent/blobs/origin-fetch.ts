import type { Readable } from 'node:stream'
import type { Metrics } from '../../shared/metrics/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { DigestMismatchError } from '../../shared/oci/index.ts'
import { OriginError, pullBlob, type Upstream } from '../../shared/origin/index.ts'
import { type ContentStore, type PartialBlob, StoreFullError } from '../../shared/store/index.ts'
import type { Authorizer } from '../authz.ts'
import { CacheFullError, isDiskFull, OriginStatusError, OriginUnavailableError } from '../errors.ts'
import { type OriginPort, originRequest } from '../origin-port.ts'
import type { PartialSink } from './fill.ts'

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
  /** Tries in all: after a connection drops mid-body, each resume asks only for the bytes not on disk yet. */
  readonly resumeAttempts?: number
  /** Wraps the origin body (rate limiting). */
  readonly throttle?: (body: Readable) => Readable
  /** Agent shutdown: the origin body is cut and nothing more is written (the partial stays for a restart). */
  readonly signal?: AbortSignal
  /**
   * Follows the pull chunk by chunk (an agent elected to pull a blob for its peers signs each chunk as it lands);
   * the bytes are then flushed at every chunk end.
   */
  readonly watch?: OriginPullWatch
}

/** Hooks into one origin pull, in order: the partial (again if the pull starts over), each append, the end. */
export interface OriginPullWatch {
  /** The partial the pull writes, and how many of its first bytes were on disk already. */
  partial(partial: PartialBlob, from: number): void | Promise<void>
  /** Bytes just appended, in blob order (awaited before more is written). */
  bytes(bytes: Uint8Array): void | Promise<void>
  /** Every byte is on disk and about to be committed. */
  complete(partial: PartialBlob): void | Promise<void>
  /** The blob is committed (true) or the pull failed (false). */
  end(committed: boolean): void | Promise<void>
}

/**
 * Fills a download from the origin: streams the body into the partial file (clients read it from there as it
 * grows), resumes with a Range request after a dropped connection, and commits only when the whole blob matches
 * its digest.
 */
export async function fetchFromOrigin(dl: PartialSink, o: OriginFetchOptions): Promise<void> {
  let partial: PartialBlob | undefined
  let asked = false
  try {
    const resumed = await resumePartial(o)
    partial = await pullBlob({
      origin: {
        request: async (upstream, req) => {
          asked = true
          o.metrics.originFetches.inc({ kind: 'blob' })
          const res = await originRequest(o.origin, upstream, req)
          // The GET that starts a download is this client's authorization check.
          if (res.status === 200 || res.status === 206)
            o.authorizer.granted(o.upstream, o.name, o.digest, o.authorization)
          return res
        },
      },
      upstream: o.upstream,
      name: o.name,
      digest: o.digest,
      ...(o.authorization === undefined ? {} : { authorization: o.authorization }),
      store: o.store,
      chunkSize: o.chunkSize,
      ...(resumed === undefined ? {} : { partial: resumed }),
      ...(o.resumeAttempts === undefined ? {} : { retry: { attempts: o.resumeAttempts } }),
      ...(o.throttle === undefined ? {} : { throttle: o.throttle }),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      // Only a watch reads the bytes after they land; otherwise they move to the store's hashing thread.
      ...(o.watch === undefined ? { moveBytes: true } : { flushAtChunkEnds: true }),
      onPartial: async (p, from) => {
        partial = p
        dl.attach(p)
        await o.watch?.partial(p, from)
      },
      onProgress: async (progress) => {
        o.metrics.bytesReceived.inc({ source: 'origin' }, progress.length)
        // The pieces are joined only for a watch that signs them (peer proofs), not on every pull.
        if (o.watch !== undefined) await o.watch.bytes(progress.bytes)
      },
    })
    await o.watch?.complete(partial)
  } catch (err) {
    await o.watch?.end(false)
    throw await failed(partial, unavailable(err), o)
  }
  // Every byte was on disk already (a crash came before the commit): no GET spoke for this client, so ask.
  try {
    if (!asked) await o.authorizer.authorize(o.upstream, o.name, 'blobs', o.digest, o.authorization, o.signal)
    await partial.commit(o.mediaType === undefined ? {} : { mediaType: o.mediaType })
  } catch (err) {
    await o.watch?.end(false)
    throw await failed(isDiskFull(err) ? partial : undefined, err, o)
  }
  await o.watch?.end(true)
}

/** What the pull throws, in the agent's words: an origin that answers with no usable blob is unavailable. */
function unavailable(err: unknown): unknown {
  if (err instanceof OriginError) return new OriginUnavailableError(err.message, { cause: err })
  if (err instanceof OriginStatusError && err.status >= 500)
    return new OriginUnavailableError(err.message, { cause: err })
  return err
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
