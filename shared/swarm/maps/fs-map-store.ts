import { randomBytes } from 'node:crypto'
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import type { ChunkAttestation } from '../../chunks/attestation.ts'
import { decodeSignedChunkMap, encodeSignedChunkMap, type SignedChunkMap } from '../../chunks/signed-map.ts'
import { type Digest, digestAlgorithm, digestHex } from '../../oci/digest.ts'
import { encodeRecord, parseLog } from './attestation-log.ts'
import type { MapStore } from './index.ts'
import { assertDigest, copyAttestation, sameGeometry } from './validate.ts'

export interface FsMapStoreOptions {
  /** The node's data directory; maps live in `<dataDir>/maps/`. */
  readonly dataDir: string
}

const MAPS_DIR = 'maps'
const ATTESTATIONS_SUFFIX = '.att'
const TEMP_MARKER = '.tmp-'
/**
 * A blob's attestation log stays open for appends this long after the last one: a cold blob gets one per chunk, and
 * opening and closing the file for each cost a seeder and a receiving agent ~3-6 % of their main thread's busy time
 * (bench/datapath, `--cpu-prof`).
 */
const LOG_IDLE_MS = 2_000

/** An attestation log open for appends, closed once idle. */
interface Appender {
  readonly handle: FileHandle
  timer: NodeJS.Timeout | undefined
}

/**
 * `<dataDir>/maps/<alg>-<hex>`: the signed map's canonical encoding, written to a temp file, fsynced and renamed
 * into place, so a reader sees the old map or the new one, never half of one.
 * `<dataDir>/maps/<alg>-<hex>.att`: the blob's attestation log (attestation-log.ts).
 * Operations on one digest are serialized; a file that does not decode is treated as absent and removed.
 */
export class FsMapStore implements MapStore {
  readonly dir: string
  readonly #locks = new Map<Digest, Promise<unknown>>()
  /** Digests whose log was checked for a torn tail in this process, with the geometry it holds. */
  readonly #logs = new Map<Digest, ChunkAttestation | undefined>()
  /** Logs open for appends (only while nothing else touches the file: each other operation closes it first). */
  readonly #appenders = new Map<Digest, Appender>()

  private constructor(dir: string) {
    this.dir = dir
  }

  /** Creates the directory if needed and removes temp files a crash left behind. */
  static async open(opts: FsMapStoreOptions & { signal?: AbortSignal }): Promise<FsMapStore> {
    const dir = join(opts.dataDir, MAPS_DIR)
    await mkdir(dir, { recursive: true })
    for (const name of await readdir(dir)) {
      opts.signal?.throwIfAborted()
      if (name.includes(TEMP_MARKER)) await rm(join(dir, name), { force: true })
    }
    return new FsMapStore(dir)
  }

  async get(digest: Digest, opts: { signal?: AbortSignal } = {}): Promise<SignedChunkMap | undefined> {
    assertDigest(digest)
    return this.#locked(digest, opts.signal, async () => {
      const bytes = await readIfExists(this.#mapPath(digest))
      if (bytes === undefined) return undefined
      try {
        const signed = decodeSignedChunkMap(bytes, { maxChunks: Number.MAX_SAFE_INTEGER })
        if (signed.map.digest === digest) return signed
      } catch {
        // fall through: corrupt
      }
      await rm(this.#mapPath(digest), { force: true })
      return undefined
    })
  }

  async put(signed: SignedChunkMap, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const bytes = encodeSignedChunkMap(signed)
    const digest = signed.map.digest
    await this.#locked(digest, opts.signal, () => writeAtomically(this.#mapPath(digest), bytes))
  }

  async putAttestation(a: ChunkAttestation, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const copy = copyAttestation(a)
    const record = encodeRecord(copy)
    const path = this.#logPath(copy.digest)
    await this.#locked(copy.digest, opts.signal, async () => {
      let geometry = this.#logs.get(copy.digest)
      if (!this.#logs.has(copy.digest)) {
        const bytes = (await readIfExists(path)) ?? new Uint8Array(0)
        const parsed = parseLog(bytes, copy.digest)
        if (parsed.validBytes < bytes.byteLength) await truncate(path, parsed.validBytes)
        geometry = parsed.attestations[0]
      }
      if (geometry !== undefined && !sameGeometry(geometry, copy)) {
        // A new file takes the old one's name: the open one would go on appending to the old.
        await this.#closeLog(copy.digest)
        await writeAtomically(path, record)
      } else {
        await this.#append(copy.digest, path, record)
      }
      this.#logs.set(copy.digest, copy)
    })
  }

  async attestations(digest: Digest, opts: { signal?: AbortSignal } = {}): Promise<ChunkAttestation[]> {
    assertDigest(digest)
    return this.#locked(digest, opts.signal, async () => {
      const bytes = await readIfExists(this.#logPath(digest))
      return bytes === undefined ? [] : parseLog(bytes, digest).attestations
    })
  }

  async delete(digest: Digest, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    assertDigest(digest)
    return this.#locked(digest, opts.signal, async () => {
      await this.#closeLog(digest)
      const hadMap = await removeIfExists(this.#mapPath(digest))
      const hadLog = await removeIfExists(this.#logPath(digest))
      this.#logs.delete(digest)
      return hadMap || hadLog
    })
  }

  /** Appends to the log through a handle kept open while appends keep coming (under the digest's lock). */
  async #append(digest: Digest, path: string, record: Uint8Array): Promise<void> {
    let appender = this.#appenders.get(digest)
    if (appender === undefined) {
      appender = { handle: await open(path, 'a', 0o644), timer: undefined }
      this.#appenders.set(digest, appender)
    }
    if (appender.timer !== undefined) clearTimeout(appender.timer)
    appender.timer = undefined
    try {
      await appender.handle.write(record)
    } catch (err) {
      await this.#closeLog(digest)
      throw err
    }
    appender.timer = setTimeout(() => {
      appender.timer = undefined
      // Under the lock, so no append or other operation on the log is in flight meanwhile.
      void this.#locked(digest, undefined, () => this.#closeLog(digest)).catch(() => {})
    }, LOG_IDLE_MS)
    appender.timer.unref()
  }

  async #closeLog(digest: Digest): Promise<void> {
    const appender = this.#appenders.get(digest)
    if (appender === undefined) return
    this.#appenders.delete(digest)
    if (appender.timer !== undefined) clearTimeout(appender.timer)
    await appender.handle.close()
  }

  #mapPath(digest: Digest): string {
    return join(this.dir, `${digestAlgorithm(digest)}-${digestHex(digest)}`)
  }

  #logPath(digest: Digest): string {
    return `${this.#mapPath(digest)}${ATTESTATIONS_SUFFIX}`
  }

  /** Runs `fn` after every earlier operation on `digest` has settled. */
  async #locked<T>(digest: Digest, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    signal?.throwIfAborted()
    const previous = this.#locks.get(digest) ?? Promise.resolve()
    const run = previous.then(
      () => fn(),
      () => fn(),
    )
    const tail = run.catch(() => {})
    this.#locks.set(digest, tail)
    try {
      return await run
    } finally {
      if (this.#locks.get(digest) === tail) this.#locks.delete(digest)
    }
  }
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

async function removeIfExists(path: string): Promise<boolean> {
  try {
    await rm(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}${TEMP_MARKER}${randomBytes(6).toString('hex')}`
  try {
    const fh = await open(temp, 'w', 0o644)
    try {
      await fh.writeFile(bytes)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(temp, path)
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
}
