import type { FileHandle } from 'node:fs/promises'
import { open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Level } from 'level'
import { type Digest, digestAlgorithm, digestHex } from '../oci/digest.ts'
import type { BlobMeta, LoadedIndex, PartialMeta, RandomAccessFile, StoreBackend, WritableFile } from './backend.ts'
import { FILE_MODE } from './constants.ts'
import { assertDigest } from './file.ts'
import { reconcile } from './fs-reconcile.ts'

export type IndexDb = Level<string, unknown>

function jsonTable<V>(db: IndexDb, name: string) {
  return db.sublevel<string, V>(name, { valueEncoding: 'json' })
}
export type JsonTable<V> = ReturnType<typeof jsonTable<V>>

export function blobTable(db: IndexDb): JsonTable<BlobMeta> {
  return jsonTable<BlobMeta>(db, 'blobs')
}

export function partialTable(db: IndexDb): JsonTable<PartialMeta> {
  return jsonTable<PartialMeta>(db, 'partials')
}

export function manifestTable(db: IndexDb): JsonTable<unknown> {
  return jsonTable<unknown>(db, 'manifests')
}

export function tagTable(db: IndexDb): JsonTable<unknown> {
  return jsonTable<unknown>(db, 'tags')
}

/** Where things live under the data directory. Paths come only from a validated digest's algorithm and hex. */
export class Layout {
  readonly dir: string
  constructor(dir: string) {
    this.dir = dir
  }

  blobDir(algorithm: string): string {
    return join(this.dir, 'blobs', algorithm)
  }

  blobPath(digest: Digest): string {
    assertDigest(digest)
    return join(this.dir, 'blobs', digestAlgorithm(digest), digestHex(digest))
  }

  get partialDir(): string {
    return join(this.dir, 'partial')
  }

  partialPath(digest: Digest): string {
    assertDigest(digest)
    return join(this.dir, 'partial', `${digestAlgorithm(digest)}-${digestHex(digest)}`)
  }
}

/** Pieces per pwritev: well under Linux's IOV_MAX (1024). */
const WRITEV_MAX_PIECES = 512

export class FileHandleFile implements WritableFile {
  readonly #fh: FileHandle

  constructor(fh: FileHandle) {
    this.#fh = fh
  }

  async read(into: Uint8Array, position: number): Promise<number> {
    const { bytesRead } = await this.#fh.read(into, 0, into.byteLength, position)
    return bytesRead
  }

  async write(bytes: Uint8Array, position: number): Promise<void> {
    let done = 0
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.#fh.write(bytes, done, bytes.byteLength - done, position + done)
      done += bytesWritten
    }
  }

  async writev(pieces: readonly Uint8Array[], position: number): Promise<void> {
    let rest = pieces.filter((p) => p.byteLength > 0)
    let at = position
    while (rest.length > 0) {
      // IOV_MAX bounds one call's list; a short write resumes inside the piece it stopped in.
      const { bytesWritten } = await this.#fh.writev(rest.slice(0, WRITEV_MAX_PIECES), at)
      if (bytesWritten <= 0) throw new Error(`writev at ${at} wrote nothing`)
      at += bytesWritten
      rest = dropBytes(rest, bytesWritten)
    }
  }

  datasync(): Promise<void> {
    return this.#fh.datasync()
  }

  close(): Promise<void> {
    return this.#fh.close()
  }
}

/** The pieces after their first `n` bytes. */
function dropBytes(pieces: readonly Uint8Array[], n: number): Uint8Array[] {
  let i = 0
  let left = n
  while (i < pieces.length && left >= pieces[i]!.byteLength) left -= pieces[i++]!.byteLength
  const rest = pieces.slice(i)
  if (left > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(left)
  return rest
}

/** Blob files under `<dir>/blobs/<alg>/<hex>`, partials under `<dir>/partial/<alg>-<hex>`, records in level. */
export class FsBackend implements StoreBackend {
  readonly #layout: Layout
  readonly #db: IndexDb
  readonly #blobs: JsonTable<BlobMeta>
  readonly #partials: JsonTable<PartialMeta>
  /** Index writes in issue order: level's native writes may otherwise overtake each other. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(dir: string, db: IndexDb) {
    this.#layout = new Layout(dir)
    this.#db = db
    this.#blobs = blobTable(db)
    this.#partials = partialTable(db)
  }

  async load(): Promise<LoadedIndex> {
    return reconcile(this.#layout, this.#blobs, this.#partials, await readBootId())
  }

  async openBlob(digest: Digest): Promise<RandomAccessFile | undefined> {
    try {
      return new FileHandleFile(await open(this.#layout.blobPath(digest), 'r'))
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async removeBlob(digest: Digest): Promise<void> {
    await rm(this.#layout.blobPath(digest), { force: true })
    await this.#index(() => this.#blobs.del(digest))
  }

  putBlobMetas(entries: readonly (readonly [Digest, BlobMeta])[]): Promise<void> {
    return this.#index(() => this.#blobs.batch(entries.map(([key, value]) => ({ type: 'put', key, value }))))
  }

  async openPartialFile(
    digest: Digest,
    size: number,
    resume: boolean,
  ): Promise<{ file: WritableFile; fresh: boolean }> {
    const path = this.#layout.partialPath(digest)
    if (resume) {
      try {
        const fh = await open(path, 'r+')
        if ((await fh.stat()).size === size) return { file: new FileHandleFile(fh), fresh: false }
        await fh.close()
      } catch (err) {
        if (!isNotFound(err)) throw err
      }
    }
    const fh = await open(path, 'w+', FILE_MODE)
    try {
      // Full length up front (sparse): positional writes land anywhere, and a resumed file's size is checkable.
      await fh.truncate(size)
    } catch (err) {
      await fh.close()
      throw err
    }
    return { file: new FileHandleFile(fh), fresh: true }
  }

  putPartialMeta(digest: Digest, meta: PartialMeta): Promise<void> {
    return this.#index(() => this.#partials.put(digest, meta))
  }

  async removePartial(digest: Digest): Promise<void> {
    await rm(this.#layout.partialPath(digest), { force: true })
    await this.#index(() => this.#partials.del(digest))
  }

  async commitPartial(digest: Digest, file: WritableFile, meta: BlobMeta): Promise<void> {
    await file.datasync()
    await rename(this.#layout.partialPath(digest), this.#layout.blobPath(digest))
    await syncDir(this.#layout.blobDir(digestAlgorithm(digest)))
    // A crash before this batch leaves a blob file without a record: the next open re-hashes and adopts it.
    await this.#index(() =>
      this.#db.batch(
        [
          { type: 'del', sublevel: this.#partials, key: digest },
          { type: 'put', sublevel: this.#blobs, key: digest, value: meta },
        ],
        { sync: true },
      ),
    )
  }

  async stop(): Promise<void> {
    await this.#queue.catch(() => {})
  }

  #index<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(op, op)
    this.#queue = next.catch(() => {})
    return next
  }
}

/** Changes at every boot of the kernel, and is the host's inside a container (the page cache is the host's). */
export async function readBootId(): Promise<string | undefined> {
  try {
    const id = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
    return id.length > 0 ? id : undefined
  } catch {
    return undefined
  }
}

export async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT'
}
