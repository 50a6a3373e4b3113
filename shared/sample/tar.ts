/**
 * A minimal POSIX ustar writer (and the header parser the tests use to read it back).
 * Only what sample layers need: regular files and directories, owned by root, with a fixed mtime.
 */

export const TAR_BLOCK_BYTES = 512

/** Largest size the 11-digit octal field holds (8 GiB - 1); bigger files would need GNU base-256. */
export const USTAR_MAX_FILE_BYTES = 0o77777777777

export type TarEntryType = 'file' | 'directory'

export interface TarEntry {
  readonly path: string
  readonly type: TarEntryType
  readonly size: number // 0 for directories
  readonly mode: number
  readonly mtime: number // seconds since the epoch
}

export class TarFormatError extends Error {
  override name = 'TarFormatError'
  readonly code = 'TAR_FORMAT'
}

const TYPEFLAG: Readonly<Record<TarEntryType, string>> = { file: '0', directory: '5' }

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8')
  if (bytes.length > length) throw new TarFormatError(`tar field too long: ${value}`)
  bytes.copy(block, offset)
}

/** Octal digits zero-padded to `length - 1`, then NUL, as ustar numeric fields are. */
function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, '0')
  if (digits.length > length - 1) throw new TarFormatError(`tar numeric field overflow: ${value}`)
  writeString(block, offset, length, `${digits}\0`)
}

/** Splits a long path at a `/` into ustar's prefix (155) and name (100) fields. */
function splitPath(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path }
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i)
    const name = path.slice(i + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { prefix, name }
  }
  throw new TarFormatError(`path too long for ustar: ${path}`)
}

export function tarHeader(entry: TarEntry): Buffer {
  if (!Number.isSafeInteger(entry.size) || entry.size < 0 || entry.size > USTAR_MAX_FILE_BYTES) {
    throw new TarFormatError(`tar entry size out of range: ${entry.size}`)
  }
  const block = Buffer.alloc(TAR_BLOCK_BYTES)
  const path = entry.type === 'directory' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path
  const { prefix, name } = splitPath(path)
  writeString(block, 0, 100, name)
  writeOctal(block, 100, 8, entry.mode)
  writeOctal(block, 108, 8, 0) // uid
  writeOctal(block, 116, 8, 0) // gid
  writeOctal(block, 124, 12, entry.type === 'directory' ? 0 : entry.size)
  writeOctal(block, 136, 12, entry.mtime)
  block.fill(0x20, 148, 156) // checksum is computed over the header with its own field as spaces
  writeString(block, 156, 1, TYPEFLAG[entry.type])
  writeString(block, 257, 6, 'ustar\0')
  writeString(block, 263, 2, '00')
  writeString(block, 265, 32, 'root')
  writeString(block, 297, 32, 'root')
  writeOctal(block, 329, 8, 0) // devmajor
  writeOctal(block, 337, 8, 0) // devminor
  writeString(block, 345, 155, prefix)
  writeString(block, 148, 8, `${checksum(block).toString(8).padStart(6, '0')}\0 `)
  return block
}

/** Sum of the header bytes, the checksum field counted as eight spaces. */
export function checksum(block: Uint8Array): number {
  let sum = 0
  for (let i = 0; i < TAR_BLOCK_BYTES; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!
  return sum
}

/** Zero bytes that follow `size` bytes of file data up to the next block boundary. */
export function tarPaddingBytes(size: number): number {
  return (TAR_BLOCK_BYTES - (size % TAR_BLOCK_BYTES)) % TAR_BLOCK_BYTES
}

/** Two zero blocks end an archive. */
export const TAR_END_BYTES = 2 * TAR_BLOCK_BYTES

/** Size of an archive holding these entries, headers and padding included. */
export function tarArchiveBytes(entries: readonly TarEntry[]): number {
  let total = TAR_END_BYTES
  for (const e of entries) total += TAR_BLOCK_BYTES + e.size + tarPaddingBytes(e.size)
  return total
}

function readString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length)
  const nul = field.indexOf(0)
  return Buffer.from(nul === -1 ? field : field.subarray(0, nul)).toString('utf8')
}

function readOctal(block: Uint8Array, offset: number, length: number): number {
  const text = readString(block, offset, length).trim()
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError(`bad octal field at ${offset}: ${text}`)
  return text === '' ? 0 : Number.parseInt(text, 8)
}

/** Parses one header block; `null` for an all-zero (end) block. Verifies magic and checksum. */
export function parseTarHeader(block: Uint8Array): TarEntry | null {
  if (block.length !== TAR_BLOCK_BYTES) throw new TarFormatError('tar header must be 512 bytes')
  if (block.every((b) => b === 0)) return null
  if (readString(block, 257, 6) !== 'ustar' || readString(block, 263, 2) !== '00') {
    throw new TarFormatError('not a ustar header')
  }
  const stored = readOctal(block, 148, 8)
  if (stored !== checksum(block)) throw new TarFormatError(`bad header checksum ${stored} != ${checksum(block)}`)
  const flag = readString(block, 156, 1)
  const type: TarEntryType | undefined = flag === '0' || flag === '' ? 'file' : flag === '5' ? 'directory' : undefined
  if (type === undefined) throw new TarFormatError(`unsupported typeflag ${flag}`)
  const name = readString(block, 0, 100)
  const prefix = readString(block, 345, 155)
  return {
    path: prefix === '' ? name : `${prefix}/${name}`,
    type,
    size: readOctal(block, 124, 12),
    mode: readOctal(block, 100, 8),
    mtime: readOctal(block, 136, 12),
  }
}
