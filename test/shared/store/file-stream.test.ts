import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PassThrough, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import type { RandomAccessFile } from '../../../shared/store/backend.ts'
import { READ_PIECE_BYTES, SEND_PIECES } from '../../../shared/store/constants.ts'
import { fileStream, type FileStream } from '../../../shared/store/file.ts'
import { bytesOf, collect, expectBytes } from './helpers.ts'

/** An in-memory file that records the buffers it read into and can hold reads back. */
class MemFile implements RandomAccessFile {
  readonly bytes: Uint8Array
  readonly buffers = new Set<ArrayBufferLike>()
  reads = 0
  closed = false
  constructor(bytes: Uint8Array) {
    this.bytes = bytes
  }
  async read(into: Uint8Array, position: number): Promise<number> {
    this.reads++
    this.buffers.add(into.buffer)
    const n = Math.min(into.byteLength, this.bytes.byteLength - position)
    into.set(this.bytes.subarray(position, position + n))
    return Math.max(0, n)
  }
  async close(): Promise<void> {
    this.closed = true
  }
}

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  server?.close()
  server = undefined
})

/** Serves `make()` to one GET, Fastify-style (`stream.pipe(res)`), and returns what the client received. */
async function serve(make: () => FileStream): Promise<{ body: Uint8Array; stream: FileStream }> {
  let stream: FileStream | undefined
  server = createServer((_req, res) => {
    stream = make()
    res.setHeader('content-type', 'application/octet-stream')
    stream.pipe(res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const res = await request(`http://127.0.0.1:${port}/`)
  const parts: Buffer[] = []
  for await (const part of res.body) parts.push(part as Buffer)
  if (!stream!.closed) await once(stream!, 'close')
  return { body: new Uint8Array(Buffer.concat(parts)), stream: stream! }
}

describe('fileStream piped to an HTTP response', () => {
  it('sends the range exactly, reading into a few reused buffers, and releases the file', async () => {
    const bytes = bytesOf(5 * READ_PIECE_BYTES + 12_345, 7)
    const file = new MemFile(bytes)
    let released = 0
    const range = { start: 1001, end: bytes.byteLength - 999 }
    const { body, stream } = await serve(() => fileStream(file, range, () => released++))
    expectBytes(body, bytes.subarray(range.start, range.end))
    expect(stream.sent).toBe(range.end - range.start)
    expect(released).toBe(1)
    // A fresh buffer per piece is what this path exists to avoid.
    expect(file.reads).toBeGreaterThan(SEND_PIECES)
    expect(file.buffers.size).toBeLessThanOrEqual(SEND_PIECES)
  })

  it('sends a small range from one buffer of its size', async () => {
    const bytes = bytesOf(10_000, 5)
    const file = new MemFile(bytes)
    const { body } = await serve(() => fileStream(file, { start: 100, end: 2100 }, () => {}))
    expectBytes(body, bytes.subarray(100, 2100))
    expect([...file.buffers].map((b) => b.byteLength)).toEqual([2000])
  })

  it('sends an empty range and ends', async () => {
    const file = new MemFile(bytesOf(100, 1))
    let released = 0
    const { body, stream } = await serve(() => fileStream(file, { start: 50, end: 50 }, () => released++))
    expect(body.byteLength).toBe(0)
    expect(stream.sent).toBe(0)
    expect(released).toBe(1)
  })

  it('stops reading and releases the file when the response is destroyed mid-way', async () => {
    const bytes = bytesOf(64 * READ_PIECE_BYTES, 3)
    const file = new MemFile(bytes)
    let released = 0
    let stream: FileStream | undefined
    server = createServer((_req, res) => {
      stream = fileStream(file, { start: 0, end: bytes.byteLength }, () => released++)
      stream.pipe(res)
      // What Fastify does when the client goes away: destroy the payload.
      res.once('close', () => stream!.destroy())
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const res = await request(`http://127.0.0.1:${port}/`)
    for await (const _ of res.body) {
      res.body.destroy()
      break
    }
    await expect.poll(() => released).toBe(1)
    const readsAtClose = file.reads
    await new Promise((r) => setTimeout(r, 50))
    expect(file.reads).toBe(readsAtClose)
    expect(stream!.sent).toBeLessThan(bytes.byteLength)
  })
})

describe('fileStream to any other consumer', () => {
  it('is a plain Readable of fresh pieces (a consumer may keep what it was given)', async () => {
    const bytes = bytesOf(3 * READ_PIECE_BYTES + 17, 9)
    const file = new MemFile(bytes)
    const kept: Buffer[] = []
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        kept.push(chunk)
        cb()
      },
    })
    await pipeline(
      fileStream(file, { start: 0, end: bytes.byteLength }, () => {}),
      sink,
    )
    expectBytes(new Uint8Array(Buffer.concat(kept)), bytes)
    expect(new Set(kept.map((k) => k.buffer)).size).toBe(kept.length)
  })

  it('piped to a PassThrough, keeps every byte', async () => {
    const bytes = bytesOf(2 * READ_PIECE_BYTES + 5, 11)
    const out = new PassThrough()
    fileStream(new MemFile(bytes), { start: 3, end: bytes.byteLength }, () => {}).pipe(out)
    expectBytes(await collect(out), bytes.subarray(3))
  })
})
