import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { Level } from 'level'
import { Bitfield } from '../chunks/bitfield.ts'
import { type Digest, Digester, isDigest } from '../oci/digest.ts'
import type { BlobMeta, PartialMeta } from './backend.ts'
import { BLOB_ALGORITHMS } from './constants.ts'
import { blobTable, type IndexDb, isNotFound, Layout, partialTable, readBootId } from './fs-backend.ts'
import { parseBlobMeta, parsePartialMeta } from './fs-reconcile.ts'
import type { ByteRange } from './index.ts'
import { chunkCountOf } from './partial.ts'

/**
 * `crashed`: the directory as a killed process left it. Only what no crash may cause is a problem: an index record
 * claiming a blob whose file is missing, has another size or fails its digest; any blob file that fails its digest.
 * A verified blob file without a record (a kill between the commit's rename and its index write), stray files and
 * half-created or half-removed partials are transitional: the next open reconciles them.
 * `reconciled`: after an open (or a clean stop), index and files must agree exactly.
 */
export type StoreCheckMode = 'crashed' | 'reconciled'

export type StoreProblemKind =
  /** An index record for a complete blob whose file is missing. */
  | 'blob-file-missing'
  /** A complete blob's file whose size is not the record's. */
  | 'blob-size-mismatch'
  /** A file under `blobs/` whose bytes do not hash to its name (indexed or not). */
  | 'blob-digest-mismatch'
  /** A verified blob file with no index record (reconciled mode only). */
  | 'blob-not-indexed'
  /** Anything under `blobs/<alg>/` that is not a file named by a digest (reconciled mode only). */
  | 'stray-file'
  /** An index record that does not parse. */
  | 'bad-record'
  /** A partial record whose file is missing or has another size (reconciled mode only). */
  | 'partial-file-missing'
  /** A partial file with no record (reconciled mode only). */
  | 'partial-not-indexed'
  /** A partial record for a blob that is complete (reconciled mode only). */
  | 'partial-of-complete-blob'

export interface StoreProblem {
  readonly kind: StoreProblemKind
  /** The digest, or the path for files not named by one. */
  readonly subject: string
  readonly detail?: string
}

export interface CheckedPartial {
  readonly digest: Digest
  readonly size: number
  readonly chunkSize: number
  /** The sequential prefix the record claims. */
  readonly prefix: number
  readonly chunksWritten: number
  /** Bytes the record claims are on disk (prefix and written chunks), merged, in order. */
  readonly claimed: readonly ByteRange[]
  /** Whether the store will believe the claim on its next open (synced, or recorded in this boot). */
  readonly trusted: boolean
  /** The partial file is there with the record's size: the store resumes from it. */
  readonly fileOk: boolean
  readonly path: string
}

export interface StoreCheck {
  readonly mode: StoreCheckMode
  /** Empty when the store is sound for `mode`. */
  readonly problems: readonly StoreProblem[]
  /** Indexed complete blobs whose file is there with the right size (and digest, unless `hash: false`). */
  readonly blobs: ReadonlyMap<Digest, { readonly size: number; readonly path: string }>
  /** Verified blob files without a record (crashed mode): the next open adopts them. */
  readonly unindexed: readonly Digest[]
  readonly partials: readonly CheckedPartial[]
}

/**
 * Checks a data directory's index against its files (fsck). Opens the index database, so the directory must not be
 * in use by a running store (level's lock refuses a second opener). Changes nothing.
 */
export async function checkStore(
  dir: string,
  opts: { mode?: StoreCheckMode; hash?: boolean; signal?: AbortSignal } = {},
): Promise<StoreCheck> {
  const mode = opts.mode ?? 'reconciled'
  const hash = opts.hash ?? true
  const layout = new Layout(resolve(dir))
  const db: IndexDb = new Level<string, unknown>(join(layout.dir, 'index'), { valueEncoding: 'json' })
  await db.open()
  const blobRecords = new Map<Digest, BlobMeta>()
  const partialRecords = new Map<Digest, PartialMeta>()
  const problems: StoreProblem[] = []
  try {
    for await (const [key, value] of blobTable(db).iterator()) {
      const meta = parseBlobMeta(value)
      if (isDigest(key) && meta !== undefined) blobRecords.set(key, meta)
      else problems.push({ kind: 'bad-record', subject: `blobs/${key}` })
    }
    for await (const [key, value] of partialTable(db).iterator()) {
      const meta = parsePartialMeta(value)
      if (isDigest(key) && meta !== undefined) partialRecords.set(key, meta)
      else problems.push({ kind: 'bad-record', subject: `partials/${key}` })
    }
  } finally {
    await db.close()
  }
  const strict = mode === 'reconciled'

  const blobs = new Map<Digest, { size: number; path: string }>()
  const unindexed: Digest[] = []
  const filesSeen = new Set<Digest>()
  for (const algorithm of BLOB_ALGORITHMS) {
    const blobDir = layout.blobDir(algorithm)
    for (const entry of await listDir(blobDir)) {
      opts.signal?.throwIfAborted()
      const path = join(blobDir, entry.name)
      const digest = `${algorithm}:${entry.name}`
      if (!entry.isFile() || !isDigest(digest)) {
        if (strict) problems.push({ kind: 'stray-file', subject: path })
        continue
      }
      filesSeen.add(digest)
      const size = (await stat(path)).size
      const record = blobRecords.get(digest)
      if (record !== undefined && record.size !== size) {
        problems.push({ kind: 'blob-size-mismatch', subject: digest, detail: `file ${size}, index ${record.size}` })
        continue
      }
      if (hash || record === undefined) {
        const actual = await hashFile(path, digest, opts.signal)
        if (actual !== digest) {
          problems.push({ kind: 'blob-digest-mismatch', subject: digest, detail: `file hashes to ${actual}` })
          continue
        }
      }
      if (record !== undefined) blobs.set(digest, { size, path })
      else if (strict) problems.push({ kind: 'blob-not-indexed', subject: digest })
      else unindexed.push(digest)
    }
  }
  for (const digest of blobRecords.keys()) {
    if (!filesSeen.has(digest)) problems.push({ kind: 'blob-file-missing', subject: digest })
  }

  const bootId = await readBootId()
  const partials: CheckedPartial[] = []
  const partialFiles = new Map<string, number>()
  for (const entry of await listDir(layout.partialDir)) {
    if (!entry.isFile()) {
      if (strict) problems.push({ kind: 'stray-file', subject: join(layout.partialDir, entry.name) })
      continue
    }
    partialFiles.set(entry.name, (await stat(join(layout.partialDir, entry.name))).size)
  }
  for (const [digest, meta] of partialRecords) {
    const path = layout.partialPath(digest)
    const name = path.slice(layout.partialDir.length + 1)
    const fileSize = partialFiles.get(name)
    partialFiles.delete(name)
    const fileOk = fileSize === meta.size
    if (strict && !fileOk) {
      problems.push({ kind: 'partial-file-missing', subject: digest, detail: `file size ${fileSize ?? 'none'}` })
    }
    if (strict && blobRecords.has(digest)) problems.push({ kind: 'partial-of-complete-blob', subject: digest })
    const written = decodeWritten(meta)
    partials.push({
      digest,
      size: meta.size,
      chunkSize: meta.chunkSize,
      prefix: meta.prefix,
      chunksWritten: written.count,
      claimed: claimedRanges(meta, written),
      trusted: meta.synced || (meta.bootId !== undefined && meta.bootId === bootId),
      fileOk,
      path,
    })
  }
  if (strict) {
    for (const name of partialFiles.keys()) {
      problems.push({ kind: 'partial-not-indexed', subject: join(layout.partialDir, name) })
    }
  }
  return { mode, problems, blobs, unindexed, partials }
}

async function listDir(path: string) {
  try {
    return await readdir(path, { withFileTypes: true })
  } catch (err) {
    if (isNotFound(err)) return []
    throw err
  }
}

async function hashFile(path: string, expected: Digest, signal: AbortSignal | undefined): Promise<Digest> {
  const digester = Digester.for(expected)
  for await (const piece of createReadStream(path, { signal })) digester.update(piece as Buffer)
  return digester.digest()
}

function decodeWritten(meta: PartialMeta): Bitfield {
  const length = chunkCountOf(meta.size, meta.chunkSize)
  try {
    return Bitfield.decode(Buffer.from(meta.written, 'base64'), length)
  } catch {
    // The store reads an undecodable bitfield as "nothing written" too.
    return new Bitfield(length)
  }
}

function claimedRanges(meta: PartialMeta, written: Bitfield): ByteRange[] {
  const out: ByteRange[] = []
  const add = (start: number, end: number): void => {
    if (end <= start) return
    const last = out[out.length - 1]
    if (last !== undefined && start <= last.end)
      out[out.length - 1] = { start: last.start, end: Math.max(end, last.end) }
    else out.push({ start, end })
  }
  add(0, meta.prefix)
  for (let i = 0; i < written.length; i++) {
    if (written.has(i)) add(i * meta.chunkSize, Math.min(meta.size, (i + 1) * meta.chunkSize))
  }
  return out
}
