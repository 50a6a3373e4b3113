import { request } from 'undici'
import { type Digest, Digester, DigestMismatchError, MANIFEST_MEDIA_TYPES, parseDigest } from '../oci/index.ts'

export interface PullResult {
  readonly manifests: number
  readonly blobs: number
  readonly blobBytes: number
  readonly ms: number
}

interface Descriptor {
  readonly digest: string
  readonly mediaType?: string
  readonly size?: number
  readonly platform?: { readonly os?: string; readonly architecture?: string }
}

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ')

/**
 * Pulls an image the way a runtime does (manifest, then every blob) and checks every digest,
 * so the demo proves the bytes, not just the status codes.
 */
export async function pullImage(
  registryUrl: string,
  name: string,
  reference: string,
  opts: { onBlob?: (digest: Digest, bytes: number) => void; platform?: string } = {},
): Promise<PullResult> {
  const start = performance.now()
  let manifests = 0
  let blobs = 0
  let blobBytes = 0
  const seen = new Set<string>()

  async function getManifest(ref: string): Promise<void> {
    const res = await request(`${registryUrl}/v2/${name}/manifests/${ref}`, { headers: { accept: ACCEPT } })
    const bytes = Buffer.from(await res.body.arrayBuffer())
    if (res.statusCode !== 200)
      throw new Error(`manifest ${ref}: HTTP ${res.statusCode} ${bytes.toString('utf8').slice(0, 200)}`)
    const claimed = parseDigest(String(res.headers['docker-content-digest']))
    const d = Digester.for(claimed)
    d.update(bytes)
    const got = d.digest()
    if (got !== claimed) throw new DigestMismatchError(claimed, got)
    manifests++
    const doc = JSON.parse(bytes.toString('utf8')) as {
      manifests?: Descriptor[]
      config?: Descriptor
      layers?: Descriptor[]
    }
    if (doc.manifests !== undefined) {
      for (const m of doc.manifests) {
        const p = `${m.platform?.os}/${m.platform?.architecture}`
        if (opts.platform === undefined || opts.platform === p) await getManifest(m.digest)
      }
      return
    }
    const all = [...(doc.config === undefined ? [] : [doc.config]), ...(doc.layers ?? [])]
    await Promise.all(
      all.filter((b) => !seen.has(b.digest) && seen.add(b.digest)).map((b) => getBlob(parseDigest(b.digest))),
    )
  }

  async function getBlob(digest: Digest): Promise<void> {
    const res = await request(`${registryUrl}/v2/${name}/blobs/${digest}`)
    if (res.statusCode !== 200) {
      await res.body.dump()
      throw new Error(`blob ${digest}: HTTP ${res.statusCode}`)
    }
    const d = Digester.for(digest)
    for await (const chunk of res.body) d.update(chunk as Uint8Array)
    const actual = d.digest()
    if (actual !== digest) throw new DigestMismatchError(digest, actual)
    blobs++
    blobBytes += d.bytes
    opts.onBlob?.(digest, d.bytes)
  }

  await getManifest(reference)
  return { manifests, blobs, blobBytes, ms: performance.now() - start }
}
