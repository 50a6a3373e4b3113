export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_MANIFEST_V1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws'

export const MANIFEST_MEDIA_TYPES: readonly string[] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]

/** What the agent asks the origin for when a client sends no Accept header of its own. */
export const DEFAULT_MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES, '*/*;q=0.1'].join(', ')

/** Largest manifest the agent buffers (distribution's own limit is 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/**
 * The media type of a manifest: the origin's Content-Type when it names a manifest type,
 * else the document's own `mediaType`, else its shape (umoci, for one, omits the field).
 */
export function manifestMediaType(bytes: Uint8Array, contentType: string | undefined): string {
  const ct = contentType?.split(';')[0]?.trim()
  if (ct !== undefined && MANIFEST_MEDIA_TYPES.includes(ct)) return ct
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    return ct && ct !== '' ? ct : OCI_MANIFEST
  }
  if (typeof doc === 'object' && doc !== null) {
    const d = doc as { mediaType?: unknown; manifests?: unknown; schemaVersion?: unknown; signatures?: unknown }
    if (typeof d.mediaType === 'string' && d.mediaType !== '') return d.mediaType
    if (Array.isArray(d.manifests)) return OCI_INDEX
    if (d.schemaVersion === 1) return DOCKER_MANIFEST_V1_SIGNED
  }
  return OCI_MANIFEST
}

/** True when an Accept header admits the media type (absent header: anything goes). */
export function accepts(acceptHeader: string | undefined, mediaType: string): boolean {
  if (acceptHeader === undefined || acceptHeader.trim() === '') return true
  for (const part of acceptHeader.split(',')) {
    const type = part.split(';')[0]?.trim().toLowerCase()
    if (type === '*/*' || type === mediaType || type === 'application/*' || type === 'application/json') return true
  }
  return false
}
