import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'
import { request } from 'undici'
import { SamplePushError } from './errors.ts'
import type { PushSampleImageOptions, SampleBlob, SampleImage, SampleManifest } from './index.ts'
import { PushAuth } from './push-auth.ts'

const DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024
const MAX_ERROR_BODY_CHARS = 2000

interface Sent {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
}

/** One registry repository, with the auth state every request of a push shares. */
class Pusher {
  readonly #root: URL
  readonly #auth: PushAuth
  readonly #signal: AbortSignal | undefined
  readonly name: string

  constructor(registryUrl: string, name: string, opts: PushSampleImageOptions) {
    this.#root = new URL(registryUrl.endsWith('/') ? registryUrl : `${registryUrl}/`)
    this.name = name
    this.#signal = opts.signal
    const creds = opts.username === undefined ? {} : { username: opts.username, password: opts.password ?? '' }
    this.#auth = new PushAuth({ ...creds, defaultScope: `repository:${name}:pull,push` })
  }

  url(path: string): URL {
    return new URL(`v2/${this.name}/${path}`, this.#root)
  }

  /** Resolves an upload `Location` (relative or absolute) against the registry. */
  location(sent: Sent): URL {
    const loc = sent.headers['location']
    const value = Array.isArray(loc) ? loc[0] : loc
    if (value === undefined || value === '')
      throw new SamplePushError('upload response has no Location', { status: sent.statusCode })
    return new URL(value, this.#root)
  }

  /**
   * Sends one request, answering a 401 challenge once. `body` is a factory so a retried request
   * gets a fresh stream: a file is always streamed, never buffered.
   */
  async send(
    method: 'HEAD' | 'POST' | 'PATCH' | 'PUT',
    url: URL,
    ok: readonly number[],
    headers: Record<string, string> = {},
    body?: () => Readable | Buffer,
  ): Promise<Sent> {
    for (let attempt = 0; ; attempt++) {
      const auth = this.#auth.header
      const payload = body?.()
      const res = await request(url, {
        method,
        headers: auth === undefined ? headers : { ...headers, authorization: auth },
        ...(payload === undefined ? {} : { body: payload }),
        ...(this.#signal === undefined ? {} : { signal: this.#signal }),
      })
      if (res.statusCode === 401 && attempt === 0) {
        await res.body.dump()
        if (payload !== undefined && !Buffer.isBuffer(payload)) payload.destroy()
        const challenge = res.headers['www-authenticate']
        await this.#auth.answer(Array.isArray(challenge) ? challenge[0] : challenge, { signal: this.#signal })
        continue
      }
      if (ok.includes(res.statusCode)) {
        await res.body.dump()
        return { statusCode: res.statusCode, headers: res.headers }
      }
      const text = (await res.body.text()).slice(0, MAX_ERROR_BODY_CHARS)
      throw new SamplePushError(`${method} ${url.pathname} answered ${res.statusCode}: ${text}`, {
        status: res.statusCode,
        ...ociCodeOf(text),
      })
    }
  }
}

function ociCodeOf(text: string): { ociCode?: string } {
  try {
    const code = (JSON.parse(text) as { errors?: { code?: unknown }[] }).errors?.[0]?.code
    return typeof code === 'string' ? { ociCode: code } : {}
  } catch {
    return {}
  }
}

function checkDigestHeader(sent: Sent, expected: string, what: string): void {
  const got = sent.headers['docker-content-digest']
  if (typeof got === 'string' && got !== expected) {
    throw new SamplePushError(`registry stored ${what} as ${got}, expected ${expected}`, { status: sent.statusCode })
  }
}

async function pushBlob(p: Pusher, blob: SampleBlob, chunkBytes: number): Promise<void> {
  const head = await p.send('HEAD', p.url(`blobs/${blob.digest}`), [200, 404])
  if (head.statusCode === 200) return
  const octets = { 'content-type': 'application/octet-stream' }
  let location = p.location(await p.send('POST', p.url('blobs/uploads/'), [202], { 'content-length': '0' }))
  let body: (() => Readable) | undefined = () => createReadStream(blob.path)
  if (blob.size > chunkBytes) {
    for (let start = 0; start < blob.size; start += chunkBytes) {
      const end = Math.min(start + chunkBytes, blob.size) - 1
      const range = { ...octets, 'content-length': String(end - start + 1), 'content-range': `${start}-${end}` }
      const sent = await p.send('PATCH', location, [202], range, () => createReadStream(blob.path, { start, end }))
      location = p.location(sent)
    }
    body = undefined
  }
  location.searchParams.set('digest', blob.digest)
  const length = { ...octets, 'content-length': String(body === undefined ? 0 : blob.size) }
  const done = await p.send('PUT', location, [201], length, body)
  checkDigestHeader(done, blob.digest, 'blob')
}

async function putManifest(p: Pusher, m: SampleManifest, reference: string): Promise<void> {
  const headers = { 'content-type': m.mediaType, 'content-length': String(m.bytes.byteLength) }
  const sent = await p.send('PUT', p.url(`manifests/${reference}`), [201], headers, () => Buffer.from(m.bytes))
  checkDigestHeader(sent, m.digest, 'manifest')
}

/**
 * Pushes an image through the OCI distribution API: blobs the registry lacks (POST, then one
 * streamed PUT, or chunked PATCHes for big blobs), then child manifests by digest, then the root by tag.
 */
export async function pushSampleImage(
  registryUrl: string,
  name: string,
  tag: string,
  image: SampleImage,
  opts: PushSampleImageOptions = {},
): Promise<void> {
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`invalid chunkBytes ${chunkBytes}`)
  const p = new Pusher(registryUrl, name, opts)
  for (const blob of image.blobs) await pushBlob(p, blob, chunkBytes)
  for (const m of image.manifests) if (m.digest !== image.root.digest) await putManifest(p, m, m.digest)
  await putManifest(p, image.root, tag)
}
