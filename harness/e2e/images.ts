import { Digester } from '../../shared/oci/digest.ts'
import { DEFAULT_MANIFEST_ACCEPT } from '../../shared/oci/media-types.ts'
import {
  generateSampleImage,
  pushSampleImage,
  type SampleImage,
  type SampleImageOptions,
  type SampleManifest,
} from '../../shared/sample/index.ts'
import { removeDir, tempDir } from './process.ts'
import type { Credentials } from './skopeo.ts'

export interface PushedImage {
  readonly image: SampleImage
  readonly name: string
  readonly tag: string
  /** Every blob digest (configs and layers of all platforms). */
  readonly blobDigests: ReadonlySet<string>
  /** The blobs one platform's manifest names, e.g. `linux/arm64`. */
  platformBlobs(platform: string): ReadonlySet<string>
  /** Pushes the same image to another registry. */
  pushTo(registryUrl: string, creds?: Credentials): Promise<void>
  cleanup(): Promise<void>
}

function manifestBlobs(m: SampleManifest): Set<string> {
  const doc = JSON.parse(Buffer.from(m.bytes).toString('utf8')) as {
    config: { digest: string }
    layers: { digest: string }[]
  }
  return new Set([doc.config.digest, ...doc.layers.map((l) => l.digest)])
}

/** Generates a sample image in a temp dir and pushes it to `registryUrl` as `name:tag`. */
export async function pushImage(
  registryUrl: string,
  name: string,
  tag: string,
  options: Omit<SampleImageOptions, 'dir'> = {},
  creds?: Credentials,
): Promise<PushedImage> {
  const dir = await tempDir('image')
  const image = await generateSampleImage({ ...options, dir })
  const pushTo = async (url: string, c: Credentials | undefined) => {
    await pushSampleImage(url, name, tag, image, c === undefined ? {} : { username: c.username, password: c.password })
  }
  await pushTo(registryUrl, creds)
  return {
    image,
    name,
    tag,
    blobDigests: new Set(image.blobs.map((b) => b.digest)),
    platformBlobs(platform) {
      const m = image.manifests.find((x) => {
        const p = x.platform
        if (p === undefined) return false
        const s = p.variant === undefined ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`
        return s === platform
      })
      if (m === undefined) throw new Error(`image has no ${platform} manifest`)
      return manifestBlobs(m)
    },
    pushTo: (url, c) => pushTo(url, c),
    cleanup: () => removeDir(dir),
  }
}

export function basicAuth(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
}

export interface FetchOptions {
  readonly authorization?: string
  /** Upstream registry the agent should use, sent as `?ns=`. */
  readonly ns?: string
  readonly method?: 'GET' | 'HEAD'
  readonly signal?: AbortSignal
}

function v2Url(baseUrl: string, path: string, ns: string | undefined): string {
  return `${baseUrl}/v2/${path}${ns === undefined ? '' : `?ns=${encodeURIComponent(ns)}`}`
}

function init(opts: FetchOptions, accept?: string): RequestInit {
  const headers: Record<string, string> = {}
  if (accept !== undefined) headers['accept'] = accept
  if (opts.authorization !== undefined) headers['authorization'] = opts.authorization
  return { method: opts.method ?? 'GET', headers, ...(opts.signal === undefined ? {} : { signal: opts.signal }) }
}

/** A raw manifest request, accepting every manifest type, as a registry client sends it. */
export async function fetchManifest(baseUrl: string, name: string, ref: string, opts: FetchOptions = {}) {
  const res = await fetch(v2Url(baseUrl, `${name}/manifests/${ref}`, opts.ns), init(opts, DEFAULT_MANIFEST_ACCEPT))
  const bytes = Buffer.from(await res.arrayBuffer())
  return { status: res.status, headers: res.headers, bytes }
}

/** A raw blob request; the body is hashed as it streams in and never held whole in memory. */
export async function fetchBlob(baseUrl: string, name: string, digest: string, opts: FetchOptions = {}) {
  const res = await fetch(v2Url(baseUrl, `${name}/blobs/${digest}`, opts.ns), init(opts))
  const digester = new Digester('sha256')
  if (res.body !== null) for await (const chunk of res.body) digester.update(chunk)
  return { status: res.status, headers: res.headers, digest: digester.digest(), bytes: digester.bytes }
}
