import { Readable } from 'node:stream'
import type { Logger } from '../../shared/log/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import { type Digest, parseRange, RegistryError } from '../../shared/oci/index.ts'
import type { Upstream } from '../../shared/origin/index.ts'
import { type ContentStore, FileStream } from '../../shared/store/index.ts'
import type { Authorizer } from '../authz.ts'
import { OriginStatusError } from '../errors.ts'
import { type OriginPort, originRequest, statusError } from '../origin-port.ts'
import { type Download, DownloadReader, type Downloads } from './download.ts'

export interface BlobRequest {
  readonly method: 'GET' | 'HEAD'
  readonly upstream: Upstream
  readonly name: string
  readonly digest: Digest
  readonly range: string | undefined
  readonly authorization: string | undefined
  readonly signal: AbortSignal
}

export interface BlobReply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body?: Readable
}

/** Starts filling a download for a blob nobody holds yet (origin now; the swarm later). */
export type BlobFiller = (dl: Download, req: BlobRequest) => Promise<void>

export interface BlobServiceDeps {
  readonly store: ContentStore
  readonly origin: OriginPort
  readonly authorizer: Authorizer
  readonly downloads: Downloads
  readonly metrics: Metrics
  readonly log: Logger
  readonly fill: BlobFiller
}

/**
 * GET/HEAD of a blob: from the cache when complete, else joined to the one download under way
 * for that digest, else a new download. Every path but the one that starts a download (whose
 * origin GET is itself the check) asks the origin whether this client may read the blob.
 */
export class BlobService {
  readonly #d: BlobServiceDeps

  constructor(deps: BlobServiceDeps) {
    this.#d = deps
  }

  async serve(req: BlobRequest): Promise<BlobReply> {
    const { store, downloads, authorizer, metrics } = this.#d
    const info = await store.stat(req.digest)
    if (info !== undefined) {
      metrics.cacheLookups.inc({ kind: 'blob', result: 'hit' })
      await authorizer.authorize(req.upstream, req.name, 'blobs', req.digest, req.authorization, req.signal)
      return this.#fromStore(req, info.size)
    }
    metrics.cacheLookups.inc({ kind: 'blob', result: 'miss' })
    if (req.method === 'HEAD') return this.#headAtOrigin(req)
    for (let attempt = 0; ; attempt++) {
      const { download, started } = downloads.join(req.digest, store, (dl) => this.#d.fill(dl, req))
      if (!started) {
        await authorizer.authorize(req.upstream, req.name, 'blobs', req.digest, req.authorization, req.signal)
      }
      try {
        return this.#fromDownload(req, download, await download.size)
      } catch (err) {
        // Joined a download that another client's credentials could not start: this client was
        // authorized on its own, so it starts one with its own credentials.
        if (started || attempt > 0 || !(err instanceof OriginStatusError)) throw err
      }
    }
  }

  async #fromStore(req: BlobRequest, size: number): Promise<BlobReply> {
    const r = rangeOf(req.range, size)
    if (r.status === 416) return r.reply
    const headers = blobHeaders(req.digest, size, r)
    if (req.method === 'HEAD') return { status: r.status, headers }
    const res = await this.#d.store.read(req.digest, { start: r.start, end: r.end })
    if (res === undefined)
      throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { detail: { digest: req.digest } })
    this.#count(res.stream)
    return { status: r.status, headers, body: res.stream }
  }

  #fromDownload(req: BlobRequest, dl: Download, size: number): BlobReply {
    const r = rangeOf(req.range, size)
    if (r.status === 416) return r.reply
    const body = dl.reader(r.start, r.end)
    this.#count(body)
    return { status: r.status, headers: blobHeaders(req.digest, size, r), body }
  }

  async #headAtOrigin(req: BlobRequest): Promise<BlobReply> {
    const res = await originRequest(this.#d.origin, req.upstream, {
      method: 'HEAD',
      path: `${req.name}/blobs/${req.digest}`,
      ...(req.authorization === undefined ? {} : { clientAuthorization: req.authorization }),
      scope: `repository:${req.name}:pull`,
      signal: req.signal,
    })
    if (res.status !== 200) throw await statusError(res)
    res.body.destroy()
    const size = Number(res.headers['content-length'])
    if (!Number.isSafeInteger(size)) throw new RegistryError('BLOB_UNKNOWN', 'origin gave no blob size')
    return { status: 200, headers: blobHeaders(req.digest, size, { status: 200, start: 0, end: size }) }
  }

  #count(stream: Readable): void {
    const served = this.#d.metrics.bytesServed
    // A file stream or a download reader piped to the response sends without 'data' events (and a 'data' listener
    // would pull it through the slower Readable path): it counts what it sent, once, when it closes.
    if (stream instanceof FileStream || stream instanceof DownloadReader)
      stream.once('close', () => served.inc({ to: 'client' }, stream.sent))
    else stream.on('data', (b: Uint8Array) => served.inc({ to: 'client' }, b.byteLength))
  }
}

type RangeChoice = { status: 200 | 206; start: number; end: number } | { status: 416; reply: BlobReply }

function rangeOf(header: string | undefined, size: number): RangeChoice {
  const r = parseRange(header, size)
  if (r.kind === 'unsatisfiable') {
    const body = { errors: [{ code: 'RANGE_INVALID', message: 'requested range not satisfiable' }] }
    return {
      status: 416,
      reply: {
        status: 416,
        headers: { 'content-range': `bytes */${size}`, 'content-type': 'application/json' },
        body: jsonStream(body),
      },
    }
  }
  if (r.kind === 'range') return { status: 206, start: r.range.start, end: r.range.end + 1 }
  return { status: 200, start: 0, end: size }
}

function blobHeaders(
  digest: Digest,
  size: number,
  r: { status: number; start: number; end: number },
): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-length': String(r.end - r.start),
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
  }
  if (r.status === 206) h['content-range'] = `bytes ${r.start}-${r.end - 1}/${size}`
  return h
}

function jsonStream(value: unknown): Readable {
  return Readable.from([Buffer.from(JSON.stringify(value))])
}
