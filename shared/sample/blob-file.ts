import { randomBytes } from 'node:crypto'
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { type Digest, Digester, digestHex } from '../oci/digest.ts'

/**
 * Writes one blob to a temp file while hashing it, then renames it to `blobs/sha256/<hex>`.
 * At most one write is in flight, so hashing the next buffer overlaps the disk write of this one
 * and memory stays at a couple of buffers whatever the blob size.
 */
export class BlobFile {
  readonly #fh: FileHandle
  readonly #tmpPath: string
  readonly #dir: string
  readonly #digester = new Digester('sha256')
  #pending: Promise<void> = Promise.resolve()
  #error: unknown

  private constructor(fh: FileHandle, tmpPath: string, dir: string) {
    this.#fh = fh
    this.#tmpPath = tmpPath
    this.#dir = dir
  }

  static async create(root: string): Promise<BlobFile> {
    const dir = join(root, 'blobs', 'sha256')
    await mkdir(dir, { recursive: true })
    const tmpPath = join(dir, `.tmp-${randomBytes(8).toString('hex')}`)
    return new BlobFile(await open(tmpPath, 'w'), tmpPath, dir)
  }

  get bytes(): number {
    return this.#digester.bytes
  }

  /** Hashes `buf` now and queues it behind the previous write. `buf` must not be reused by the caller. */
  async write(buf: Uint8Array): Promise<void> {
    this.#digester.update(buf)
    await this.#pending
    if (this.#error !== undefined) throw this.#error
    // The rejection is parked in #error so it is never unhandled while the caller computes the next buffer.
    this.#pending = writeAll(this.#fh, buf).catch((err: unknown) => {
      this.#error = err
    })
  }

  async finish(): Promise<{ digest: Digest; size: number; path: string }> {
    await this.#pending
    await this.#fh.close()
    if (this.#error !== undefined) {
      await rm(this.#tmpPath, { force: true })
      throw this.#error
    }
    const digest = this.#digester.digest()
    const path = join(this.#dir, digestHex(digest))
    await rename(this.#tmpPath, path)
    return { digest, size: this.#digester.bytes, path }
  }

  async abort(): Promise<void> {
    await this.#pending
    await this.#fh.close().catch(() => {})
    await rm(this.#tmpPath, { force: true })
  }
}

async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let offset = 0
  while (offset < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, offset, buf.byteLength - offset)
    offset += bytesWritten
  }
}
