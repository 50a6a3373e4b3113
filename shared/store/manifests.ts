import { type Digest, digestAlgorithm, digestOf, isDigest } from '../oci/digest.ts'
import { DigestMismatchError } from '../oci/errors.ts'
import { assertDigest } from './file.ts'
import { type IndexDb, type JsonTable, manifestTable, tagTable } from './fs-backend.ts'
import type { ManifestCache, TagRecord } from './index.ts'

interface StoredManifest {
  readonly mediaType: string
  readonly bytes: Uint8Array
}

/** Manifests are named by their digest: bytes that do not hash to it are never cached. */
function checkManifest(digest: Digest, mediaType: string, bytes: Uint8Array): void {
  assertDigest(digest)
  if (typeof mediaType !== 'string') throw new TypeError('mediaType must be a string')
  const actual = digestOf(bytes, digestAlgorithm(digest))
  if (actual !== digest) throw new DigestMismatchError(digest, actual)
}

function checkTagKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('tag key must be a non-empty string')
}

function checkTag(value: TagRecord): TagRecord {
  assertDigest(value.digest)
  if (typeof value.mediaType !== 'string' || !Number.isFinite(value.resolvedAt)) {
    throw new TypeError('tag record needs a mediaType and a finite resolvedAt')
  }
  return { digest: value.digest, mediaType: value.mediaType, resolvedAt: value.resolvedAt }
}

function parseTag(v: unknown): TagRecord | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const { digest, mediaType, resolvedAt } = v as Record<string, unknown>
  if (typeof digest !== 'string' || !isDigest(digest)) return undefined
  if (typeof mediaType !== 'string' || typeof resolvedAt !== 'number') return undefined
  return { digest, mediaType, resolvedAt }
}

/** Manifests and tags in the store's level database (sublevels `manifests` and `tags`). */
export class LevelManifestCache implements ManifestCache {
  readonly #manifests: JsonTable<unknown>
  readonly #tags: JsonTable<unknown>

  constructor(db: IndexDb) {
    this.#manifests = manifestTable(db)
    this.#tags = tagTable(db)
  }

  async getManifest(digest: Digest): Promise<StoredManifest | undefined> {
    assertDigest(digest)
    const v = await this.#manifests.get(digest)
    if (typeof v !== 'object' || v === null) return undefined
    const { mediaType, bytes } = v as Record<string, unknown>
    if (typeof mediaType !== 'string' || typeof bytes !== 'string') return undefined
    const out = new Uint8Array(Buffer.from(bytes, 'base64'))
    // A damaged record is a miss, not a wrong answer.
    if (digestOf(out, digestAlgorithm(digest)) !== digest) return undefined
    return { mediaType, bytes: out }
  }

  async putManifest(digest: Digest, mediaType: string, bytes: Uint8Array): Promise<void> {
    checkManifest(digest, mediaType, bytes)
    await this.#manifests.put(digest, { mediaType, bytes: Buffer.from(bytes).toString('base64') })
  }

  async getTag(key: string): Promise<TagRecord | undefined> {
    checkTagKey(key)
    return parseTag(await this.#tags.get(key))
  }

  async putTag(key: string, value: TagRecord): Promise<void> {
    checkTagKey(key)
    await this.#tags.put(key, checkTag(value))
  }
}

/** For other modules' unit tests. Copies bytes in and out, like the real one. */
export class MemoryManifestCache implements ManifestCache {
  readonly #manifests = new Map<Digest, StoredManifest>()
  readonly #tags = new Map<string, TagRecord>()

  async getManifest(digest: Digest): Promise<StoredManifest | undefined> {
    assertDigest(digest)
    const m = this.#manifests.get(digest)
    return m === undefined ? undefined : { mediaType: m.mediaType, bytes: m.bytes.slice() }
  }

  async putManifest(digest: Digest, mediaType: string, bytes: Uint8Array): Promise<void> {
    checkManifest(digest, mediaType, bytes)
    this.#manifests.set(digest, { mediaType, bytes: bytes.slice() })
  }

  async getTag(key: string): Promise<TagRecord | undefined> {
    checkTagKey(key)
    const t = this.#tags.get(key)
    return t === undefined ? undefined : { ...t }
  }

  async putTag(key: string, value: TagRecord): Promise<void> {
    checkTagKey(key)
    this.#tags.set(key, checkTag(value))
  }
}
