import { createReadStream } from 'node:fs'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type Digest, Digester, isDigest } from '../oci/digest.ts'
import type { BlobMeta, LoadedIndex, PartialMeta } from './backend.ts'
import { BLOB_ALGORITHMS, DIR_MODE } from './constants.ts'
import type { JsonTable, Layout } from './fs-backend.ts'

/**
 * Makes the index and the files agree after any stop, clean or not:
 * - a blob record without its file, or whose file has another size, is dropped (with the file);
 * - a blob file without a record is re-hashed: adopted if it matches its name (a crash between the commit's
 *   rename and its index write), removed otherwise;
 * - anything else in `blobs/<alg>/` (temp files, junk) and partial files without a record are removed;
 * - a partial record without its file is dropped; a partial whose blob is complete is removed.
 */
export async function reconcile(
  layout: Layout,
  blobTable: JsonTable<BlobMeta>,
  partialTable: JsonTable<PartialMeta>,
  bootId: string | undefined,
): Promise<LoadedIndex> {
  for (const algorithm of BLOB_ALGORITHMS) await mkdir(layout.blobDir(algorithm), { recursive: true, mode: DIR_MODE })
  await mkdir(layout.partialDir, { recursive: true, mode: DIR_MODE })

  const blobs = new Map<Digest, BlobMeta>()
  const partials = new Map<Digest, PartialMeta>()
  const dropBlobs: string[] = []
  const dropPartials: string[] = []
  const adopted: [Digest, BlobMeta][] = []
  for await (const [key, value] of blobTable.iterator()) {
    const meta = parseBlobMeta(value)
    if (isDigest(key) && meta !== undefined) blobs.set(key, meta)
    else dropBlobs.push(key)
  }
  for await (const [key, value] of partialTable.iterator()) {
    const meta = parsePartialMeta(value)
    if (isDigest(key) && meta !== undefined) partials.set(key, meta)
    else dropPartials.push(key)
  }

  const seen = new Set<Digest>()
  for (const algorithm of BLOB_ALGORITHMS) {
    const dir = layout.blobDir(algorithm)
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) continue
      const path = join(dir, entry.name)
      const digest = `${algorithm}:${entry.name}`
      if (!entry.isFile() || !isDigest(digest)) {
        await rm(path, { force: true })
        continue
      }
      const st = await stat(path)
      const meta = blobs.get(digest)
      if (meta !== undefined) {
        if (st.size === meta.size) seen.add(digest)
        else await rm(path, { force: true })
        continue
      }
      if ((await hashFile(path, digest)) === digest) {
        const found: BlobMeta = { size: st.size, storedAt: st.mtimeMs, lastAccess: st.mtimeMs }
        blobs.set(digest, found)
        adopted.push([digest, found])
        seen.add(digest)
      } else {
        await rm(path, { force: true })
      }
    }
  }
  for (const digest of blobs.keys()) {
    if (seen.has(digest)) continue
    blobs.delete(digest)
    dropBlobs.push(digest)
  }

  const seenPartials = new Set<Digest>()
  for (const entry of await readdir(layout.partialDir, { withFileTypes: true })) {
    if (entry.isDirectory()) continue
    const path = join(layout.partialDir, entry.name)
    const digest = entry.name.replace('-', ':')
    if (entry.isFile() && isDigest(digest) && partials.has(digest) && !blobs.has(digest)) {
      seenPartials.add(digest)
    } else {
      await rm(path, { force: true })
    }
  }
  for (const digest of partials.keys()) {
    if (seenPartials.has(digest)) continue
    partials.delete(digest)
    dropPartials.push(digest)
  }

  await blobTable.batch([
    ...dropBlobs.map((key) => ({ type: 'del' as const, key })),
    ...adopted.map(([key, value]) => ({ type: 'put' as const, key, value })),
  ])
  await partialTable.batch(dropPartials.map((key) => ({ type: 'del' as const, key })))
  return bootId === undefined ? { blobs, partials } : { blobs, partials, bootId }
}

async function hashFile(path: string, expected: Digest): Promise<Digest> {
  const digester = Digester.for(expected)
  for await (const piece of createReadStream(path)) digester.update(piece as Buffer)
  return digester.digest()
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

export function parseBlobMeta(v: unknown): BlobMeta | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const { size, mediaType, storedAt, lastAccess } = v as Record<string, unknown>
  if (!isCount(size) || !isTime(storedAt) || !isTime(lastAccess)) return undefined
  if (mediaType !== undefined && typeof mediaType !== 'string') return undefined
  return mediaType === undefined ? { size, storedAt, lastAccess } : { size, mediaType, storedAt, lastAccess }
}

export function parsePartialMeta(v: unknown): PartialMeta | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const { size, chunkSize, written, prefix, createdAt, synced, bootId } = v as Record<string, unknown>
  if (!isCount(size) || !isCount(chunkSize) || chunkSize === 0 || !isCount(prefix) || prefix > size) return undefined
  if (typeof written !== 'string' || !isTime(createdAt) || typeof synced !== 'boolean') return undefined
  if (bootId !== undefined && typeof bootId !== 'string') return undefined
  const meta: PartialMeta = { size, chunkSize, written, prefix, createdAt, synced }
  return bootId === undefined ? meta : { ...meta, bootId }
}
