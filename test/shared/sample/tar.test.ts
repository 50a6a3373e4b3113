import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  checksum,
  parseTarHeader,
  TAR_BLOCK_BYTES,
  TAR_END_BYTES,
  type TarEntry,
  tarArchiveBytes,
  tarHeader,
  tarPaddingBytes,
} from '../../../shared/sample/tar.ts'

const run = promisify(execFile)

const file = (path: string, size: number): TarEntry => ({ path, type: 'file', size, mode: 0o644, mtime: 1_700_000_000 })

describe('ustar writer', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-tar-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('writes a header that parses back, with magic and a correct checksum', () => {
    const block = tarHeader(file('a/b.bin', 12345))
    expect(block.length).toBe(TAR_BLOCK_BYTES)
    expect(block.subarray(257, 263).toString('latin1')).toBe('ustar\0')
    expect(block.subarray(263, 265).toString('latin1')).toBe('00')
    // Stored as six octal digits, NUL, space (the form GNU tar writes).
    expect(block.subarray(148, 156).toString('latin1')).toBe(`${checksum(block).toString(8).padStart(6, '0')}\0 `)
    expect(parseTarHeader(block)).toEqual(file('a/b.bin', 12345))
  })

  it('marks directories with typeflag 5 and a trailing slash', () => {
    const block = tarHeader({ path: 'dir', type: 'directory', size: 0, mode: 0o755, mtime: 0 })
    expect(String.fromCharCode(block[156]!)).toBe('5')
    expect(parseTarHeader(block)).toEqual({ path: 'dir/', type: 'directory', size: 0, mode: 0o755, mtime: 0 })
  })

  it('splits long paths into prefix and name, and refuses what ustar cannot hold', () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(90)}`
    expect(parseTarHeader(tarHeader(file(long, 1)))?.path).toBe(long)
    expect(() => tarHeader(file('x'.repeat(101), 1))).toThrow(expect.objectContaining({ code: 'TAR_FORMAT' }))
    expect(() => tarHeader(file('a', 8 * 1024 ** 3))).toThrow(expect.objectContaining({ name: 'TarFormatError' }))
    expect(() => tarHeader(file('a', -1))).toThrow(expect.objectContaining({ code: 'TAR_FORMAT' }))
  })

  it('rejects a corrupted header and reads an all-zero block as the end', () => {
    const block = tarHeader(file('a', 1))
    block[0] = 'b'.charCodeAt(0)
    expect(() => parseTarHeader(block)).toThrow(/checksum/)
    expect(parseTarHeader(new Uint8Array(TAR_BLOCK_BYTES))).toBeNull()
  })

  it('round-trips any representable entry', () => {
    const component = fc.stringMatching(/^[a-z0-9._-]{1,20}$/)
    fc.assert(
      fc.property(
        fc.array(component, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 2 ** 33 - 1 }),
        fc.integer({ min: 0, max: 0o7777 }),
        fc.integer({ min: 0, max: 2 ** 33 - 1 }),
        (parts, size, mode, mtime) => {
          const entry: TarEntry = { path: parts.join('/'), type: 'file', size, mode, mtime }
          expect(parseTarHeader(tarHeader(entry))).toEqual(entry)
        },
      ),
    )
  })

  it('pads data to 512 bytes and sizes archives', () => {
    expect([0, 1, 511, 512, 513].map(tarPaddingBytes)).toEqual([0, 511, 1, 0, 511])
    expect(tarArchiveBytes([file('a', 1), file('b', 512)])).toBe(512 + 512 + 512 + 512 + TAR_END_BYTES)
  })

  it('writes archives that GNU tar lists and extracts', async () => {
    const data = Buffer.from('hello from a hand-written ustar archive\n')
    const long = `${'p'.repeat(110)}/${'n'.repeat(60)}.txt`
    const archive = Buffer.concat([
      tarHeader({ path: 'top/', type: 'directory', size: 0, mode: 0o755, mtime: 1_700_000_000 }),
      tarHeader(file('top/hello.txt', data.length)),
      data,
      Buffer.alloc(tarPaddingBytes(data.length)),
      tarHeader(file(long, 3)),
      Buffer.from('abc'),
      Buffer.alloc(tarPaddingBytes(3)),
      Buffer.alloc(TAR_END_BYTES),
    ])
    const path = join(dir, 'a.tar')
    await writeFile(path, archive)
    const { stdout, stderr } = await run('tar', ['-tvf', path], { env: { ...process.env, TZ: 'UTC' } })
    expect(stderr).toBe('')
    const lines = stdout.trim().split('\n')
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/^drwxr-xr-x root\/root +0 2023-11-14 22:13 top\/$/)
    expect(lines[1]).toMatch(new RegExp(`^-rw-r--r-- root/root +${data.length} .* top/hello\\.txt$`))
    expect(lines[2]).toContain(long)
    const out = join(dir, 'out')
    await run('mkdir', [out])
    await run('tar', ['-xf', path, '-C', out])
    expect(await readFile(join(out, 'top/hello.txt'))).toEqual(data)
    expect((await readFile(join(out, long))).toString()).toBe('abc')
  })
})
