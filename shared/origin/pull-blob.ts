import type { Readable } from 'node:stream'
import { freePiece } from '../hashing/index.ts'
import { type Digest, DigestMismatchError } from '../oci/index.ts'
import type { ContentStore, PartialBlob } from '../store/index.ts'
import type { OriginRequest, OriginResponse } from './client.ts'
import { PULL_ATTEMPTS, PULL_BATCH_BYTES, PULL_RETRY_BASE_DELAY_MS, PULL_RETRY_MAX_DELAY_MS } from './constants.ts'
import { OriginError, OriginStatusError, originStatusError } from './errors.ts'
import { backoffDelayMs, type RetryPolicy, sleep } from './retry.ts'
import type { Upstream } from './upstream.ts'

/** The slice of the origin client a pull needs; callers may wrap it (metrics, error mapping), tests fake it. */
export interface BlobPullOrigin {
  request(upstream: Upstream, req: OriginRequest): Promise<OriginResponse>
}

/** Bytes that just landed in the partial: they start at `offset`, and every earlier byte is on disk. */
export interface PullProgress {
  readonly partial: PartialBlob
  readonly offset: number
  /** How many bytes landed. */
  readonly length: number
  /** The bytes as they arrived, back to back (views of the origin's pieces: no copy); empty when `moveBytes`. */
  readonly pieces: readonly Uint8Array[]
  /**
   * The same bytes in one buffer: joined (a copy) when first read, so a caller that needs no such buffer pays nothing.
   * Empty when `moveBytes`.
   */
  readonly bytes: Uint8Array
}

function progress(partial: PartialBlob, offset: number, pieces: readonly Uint8Array[], length: number): PullProgress {
  let joined: Uint8Array | undefined
  return {
    partial,
    offset,
    length,
    pieces,
    get bytes(): Uint8Array {
      joined ??= pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, length)
      return joined
    },
  }
}

export interface PullBlobOptions {
  readonly origin: BlobPullOrigin
  readonly upstream: Upstream
  readonly name: string
  readonly digest: Digest
  /** Sent instead of the configured credentials (a client's own, a preheat job's); never stored. */
  readonly authorization?: string
  /** Opens the partial for a blob whose size the origin just gave (`partial` absent, or started over). */
  readonly store: Pick<ContentStore, 'openPartial'>
  /** Chunk size of a partial the pull opens. */
  readonly chunkSize: number
  /** A partial to resume: the origin is asked only for the bytes from its appendOffset on (Range). */
  readonly partial?: PartialBlob
  /** Stops the pull: the origin body is cut, nothing more is written, the partial stays (for a later resume). */
  readonly signal?: AbortSignal
  /** Tries in all and the pause before each retry; a retry follows a body that broke off or ended short. */
  readonly retry?: Partial<RetryPolicy>
  /** Origin bytes gathered before one append (default PULL_BATCH_BYTES). */
  readonly batchBytes?: number
  /**
   * Also append whenever the bytes gathered reach the end of a chunk of the partial, so a chunk's last byte lands
   * (and `onProgress` hears of it) as soon as it arrives: the seeder attests each chunk then.
   */
  readonly flushAtChunkEnds?: boolean
  /** Wraps each origin body (rate limiting). */
  readonly throttle?: (body: Readable) => Readable
  /**
   * The origin's pieces are given up to the partial at each append when the origin owns them (`bodyOwned`): their
   * memory moves to the partial's hashing thread, and `onProgress` hears offsets and lengths, not bytes.
   */
  readonly moveBytes?: boolean
  /**
   * Without `moveBytes`: the origin's own pieces (`bodyOwned`) are freed once appended and `onProgress` returned
   * (which must not keep them), rather than left to the collector: a fresh buffer per socket read piles up as
   * external memory, which V8 answers with full collections.
   */
  readonly freeBytes?: boolean
  /**
   * The partial being filled from now on, and the offset the origin's bytes start at: called once the origin
   * answered with the blob, before its first byte is written, and again with a fresh partial when the pull had to
   * start over (the old one is discarded). Not called again for the same partial after a resume.
   */
  readonly onPartial?: (partial: PartialBlob, from: number) => void | Promise<void>
  /** After each append lands, in order. Awaited before more is written; a throw ends the pull with that error. */
  readonly onProgress?: (p: PullProgress) => void | Promise<void>
  /** Jitter source for retry pauses. */
  readonly random?: () => number
}

/**
 * Pulls one blob from the origin into a partial, the one loop both binaries use: it resumes from the bytes on disk
 * with a Range request and refuses a 206 that starts anywhere else, gathers the origin's small pieces into fewer
 * appends, resumes again after the body breaks off, and stops at once on `signal`. It resolves with the partial
 * holding every byte; the caller commits it (the store checks the whole-blob digest then).
 *
 * Throws: OriginStatusError for an answer other than the blob (the origin's status, or 502 for an answer it
 * cannot use); OriginError `ORIGIN_BODY_INCOMPLETE` when the tries are spent; DigestMismatchError when the origin
 * sends more bytes than the blob has; the store's error when a write fails; `signal.reason` when aborted.
 * Whatever `origin.request` throws passes through.
 */
export async function pullBlob(o: PullBlobOptions): Promise<PartialBlob> {
  const policy: RetryPolicy = {
    attempts: o.retry?.attempts ?? PULL_ATTEMPTS,
    baseDelayMs: o.retry?.baseDelayMs ?? PULL_RETRY_BASE_DELAY_MS,
    maxDelayMs: o.retry?.maxDelayMs ?? PULL_RETRY_MAX_DELAY_MS,
  }
  const { signal } = o
  let partial = o.partial
  let announced = false
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted()
    // Bytes on disk from the start, whoever wrote them (an earlier try, or chunks from the swarm): only the rest
    // is asked for.
    const from = partial?.prefixBytes ?? 0
    // Nothing is left to fetch when a crash came between the last byte and the commit.
    if (partial !== undefined && from >= partial.size) {
      if (!announced) await o.onPartial?.(partial, from)
      return partial
    }
    const res = await o.origin.request(o.upstream, {
      method: 'GET',
      path: `${o.name}/blobs/${o.digest}`,
      scope: `repository:${o.name}:pull`,
      headers: from > 0 ? { range: `bytes=${from}-` } : {},
      ...(o.authorization === undefined ? {} : { clientAuthorization: o.authorization }),
      ...(signal === undefined ? {} : { signal }),
    })
    if (res.status !== 200 && res.status !== 206) {
      throw await originStatusError(res, `origin answered ${res.status} for ${o.name}@${o.digest}`)
    }
    if (res.status === 206) {
      const range = parseContentRange(res.headers['content-range'])
      if (partial === undefined || range === undefined || range.start !== from || !sizeAgrees(range, partial)) {
        res.body.destroy()
        const refused = new OriginStatusError(
          502,
          {},
          undefined,
          `origin answered a Range from ${from} with ${headerText(res.headers['content-range'])}`,
        )
        // Asked for no Range: nothing to start over from.
        if (partial === undefined || attempt + 1 >= policy.attempts) throw refused
        // An offset the origin does not honour cannot be trusted: start over from the first byte.
        await partial.discard()
        partial = undefined
        continue
      }
    } else if (partial !== undefined && from > 0) {
      // The origin ignored the Range: start over rather than trust an offset.
      await partial.discard()
      partial = undefined
    }
    let skip = 0
    if (partial === undefined) {
      const length = res.headers['content-length']
      const size = typeof length === 'string' ? Number(length) : Number.NaN
      if (!Number.isSafeInteger(size) || size < 0) {
        res.body.destroy()
        throw new OriginStatusError(502, {}, undefined, 'origin sent a blob without a valid Content-Length')
      }
      try {
        partial = await o.store.openPartial(o.digest, {
          size,
          chunkSize: o.chunkSize,
          ...(signal === undefined ? {} : { signal }),
        })
      } catch (err) {
        res.body.destroy()
        throw err
      }
      // The store resumed bytes left on disk: the whole body comes anyway, and its head is already there.
      skip = partial.prefixBytes
      await o.onPartial?.(partial, skip)
      announced = true
    } else if (!announced) {
      // A resumed partial is handed out only once the origin agreed to send the rest.
      await o.onPartial?.(partial, from)
      announced = true
    }
    const body = o.throttle === undefined ? res.body : o.throttle(res.body)
    const move = o.moveBytes === true && res.bodyOwned === true
    const free = !move && o.freeBytes === true && res.bodyOwned === true
    const { cut, end } = await copyBody(body, partial, res.status === 206 ? from : 0, skip, { move, free }, o)
    if (cut === undefined && end >= partial.size) return partial
    if (attempt + 1 >= policy.attempts) {
      const why =
        cut === undefined
          ? `origin closed the blob at ${end} of ${partial.size} bytes`
          : `origin broke off the blob at ${end} of ${partial.size} bytes: ${(cut as Error).message}`
      throw new OriginError('ORIGIN_BODY_INCOMPLETE', o.upstream.registry, why, { cause: cut })
    }
    await sleep(backoffDelayMs(attempt, policy, o.random), signal)
  }
}

/**
 * Copies a body that starts at offset `start` of the blob into the partial (its first `skip` bytes are on disk
 * already). Resolves with where the bytes on disk end now, and the origin's error when the body broke off (what
 * arrived before is on disk); throws for anything a retry cannot mend.
 */
async function copyBody(
  body: Readable,
  partial: PartialBlob,
  start: number,
  skip: number,
  { move, free }: { move: boolean; free: boolean },
  o: PullBlobOptions,
): Promise<{ cut: unknown; end: number }> {
  const { signal } = o
  const limit = o.batchBytes ?? PULL_BATCH_BYTES
  let batch: Uint8Array[] = []
  let batched = 0
  // The end of the bytes on disk from this body.
  let written = start + skip
  // Set when the failure is ours (store, caller's hook, too many bytes), not the origin connection's.
  let fatal = false
  const flush = async (): Promise<void> => {
    if (batched === 0) return
    // The pieces go to disk as they are, in one gathered write: no copy to join them.
    const pieces = batch
    const length = batched
    batch = []
    batched = 0
    const offset = written
    try {
      await partial.append(
        pieces,
        signal === undefined ? { at: offset, transfer: move } : { at: offset, signal, transfer: move },
      )
      written += length
      await o.onProgress?.(progress(partial, offset, pieces, length))
      if (free) for (const piece of pieces) freePiece(piece)
    } catch (err) {
      fatal = true
      throw err
    }
  }
  const onAbort = (): void => {
    body.destroy(signal?.reason as Error)
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const piece of body) {
      let b = piece as Uint8Array
      if (skip > 0) {
        const n = Math.min(skip, b.byteLength)
        skip -= n
        b = b.subarray(n)
        if (b.byteLength === 0) continue
      }
      const end = written + batched + b.byteLength
      if (end > partial.size) {
        fatal = true
        throw new DigestMismatchError(o.digest, `more than ${partial.size} bytes`)
      }
      batch.push(b)
      batched += b.byteLength
      // Whether this piece reached the end of a chunk (or of the blob) that was still open before it.
      const chunkEnded =
        o.flushAtChunkEnds === true &&
        (end === partial.size ||
          Math.floor(end / partial.chunkSize) > Math.floor((end - b.byteLength) / partial.chunkSize))
      if (batched >= limit || chunkEnded) await flush()
    }
    await flush()
    return { cut: undefined, end: written }
  } catch (err) {
    body.destroy()
    if (signal?.aborted === true) throw signal.reason
    if (fatal) throw err
    // The origin broke off: what arrived before is kept (the digest check at commit still covers it), so the
    // resume asks only for the rest.
    await flush()
    return { cut: err, end: written }
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}

/** `bytes START-END/SIZE` (SIZE may be `*`), else undefined. */
export function parseContentRange(
  header: string | string[] | undefined,
): { start: number; end: number; size: number | undefined } | undefined {
  const m = typeof header === 'string' ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim()) : null
  if (m === null) return undefined
  const start = Number(m[1])
  const end = Number(m[2])
  const size = m[3] === '*' ? undefined : Number(m[3])
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined
  if (size !== undefined && (!Number.isSafeInteger(size) || end >= size)) return undefined
  return { start, end, size }
}

function sizeAgrees(range: { end: number; size: number | undefined }, partial: PartialBlob): boolean {
  return range.end < partial.size && (range.size === undefined || range.size === partial.size)
}

function headerText(v: string | string[] | undefined): string {
  if (v === undefined) return 'no Content-Range'
  return Array.isArray(v) ? v.join(', ') : v
}
