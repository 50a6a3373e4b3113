import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { Level } from 'level'
import type { StoreBackend } from './backend.ts'
import { DIR_MODE, STORE_FORMAT_VERSION } from './constants.ts'
import { StoreFormatError } from './errors.ts'
import { FsBackend, type IndexDb } from './fs-backend.ts'
import type { FsStore, FsStoreOptions, StoreOptions } from './index.ts'
import { LevelManifestCache } from './manifests.ts'
import { BlobStore } from './store.ts'

/** The content store on disk. Open it with openFsStore, which also owns the level database. */
export class FsContentStore extends BlobStore {
  static async open(backend: StoreBackend, opts: StoreOptions = {}): Promise<FsContentStore> {
    const store = new FsContentStore(backend, await backend.load(), opts)
    await store.enforceQuota()
    return store
  }
}

/**
 * Opens (creating if needed) the store under `dir`, reconciling index and files (see fs-reconcile.ts).
 * One process per directory: level's lock makes a second open fail.
 */
export async function openFsStore(opts: FsStoreOptions): Promise<FsStore> {
  const dir = resolve(opts.dir)
  await mkdir(dir, { recursive: true, mode: DIR_MODE })
  const db: IndexDb = new Level<string, unknown>(join(dir, 'index'), { valueEncoding: 'json' })
  await db.open()
  try {
    await checkFormat(db)
    const blobs = await FsContentStore.open(new FsBackend(dir, db), opts)
    const manifests = new LevelManifestCache(db)
    let stopping: Promise<void> | undefined
    return {
      blobs,
      manifests,
      stop: () => {
        stopping ??= blobs.stop().finally(() => db.close())
        return stopping
      },
    }
  } catch (err) {
    await db.close()
    throw err
  }
}

async function checkFormat(db: IndexDb): Promise<void> {
  const found = await db.get('format')
  if (found === undefined) await db.put('format', STORE_FORMAT_VERSION)
  else if (found !== STORE_FORMAT_VERSION) {
    throw new StoreFormatError(`store format ${String(found)} is not supported (want ${STORE_FORMAT_VERSION})`)
  }
}
