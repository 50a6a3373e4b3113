import type { PeerId } from '@libp2p/interface'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import type { Digest } from '../../../../shared/oci/digest.ts'
import { ChunkBuffers, type ChunkSource, takeChunk, UploadSlots } from '../../../../shared/swarm/serve/index.ts'

afterEach(() => {
  vi.useRealTimers()
})

describe('ChunkBuffers', () => {
  it('hands a buffer given back out again for the same length, and a fresh one otherwise', () => {
    const b = new ChunkBuffers({ maxBytes: 4096, idleMs: 1000 })
    const first = b.take(1024)
    expect(first.byteLength).toBe(1024)
    b.give(first)
    expect(b.idleBytes).toBe(1024)
    expect(b.take(1024)).toBe(first)
    expect(b.idleBytes).toBe(0)
    const other = b.take(1024)
    expect(other).not.toBe(first)
    expect(b.take(512)).not.toBe(first)
    // Never a view of Node's shared small-buffer pool: its memory is its own.
    expect(other.buffer.byteLength).toBe(1024)
  })

  it('hands out shared memory when asked to (a hashing thread reads it in place)', () => {
    const b = new ChunkBuffers({ maxBytes: 4096, idleMs: 1000, shared: true })
    const first = b.take(1024)
    expect(first.buffer).toBeInstanceOf(SharedArrayBuffer)
    expect(first.byteLength).toBe(1024)
    b.give(first)
    expect(b.take(1024)).toBe(first)
    expect(new ChunkBuffers({ maxBytes: 4096, idleMs: 1000 }).take(1024).buffer).toBeInstanceOf(ArrayBuffer)
  })

  it('takes back only what it handed out, each once', () => {
    const b = new ChunkBuffers({ maxBytes: 4096, idleMs: 1000 })
    b.give(Buffer.allocUnsafe(1024))
    b.give(new Uint8Array(1024))
    expect(b.idleBytes).toBe(0)
    const mine = b.take(1024)
    b.give(mine)
    b.give(mine)
    expect(b.idleBytes).toBe(1024)
    expect(b.take(1024)).toBe(mine)
    expect(b.take(1024)).not.toBe(mine)
  })

  it('keeps at most maxBytes idle, and lets all go once none was taken for idleMs', () => {
    vi.useFakeTimers()
    const b = new ChunkBuffers({ maxBytes: 2048, idleMs: 1000 })
    const bufs = [b.take(1024), b.take(1024), b.take(1024)]
    for (const x of bufs) b.give(x)
    expect(b.idleBytes).toBe(2048)
    vi.advanceTimersByTime(900)
    b.give(b.take(1024)) // taken in this interval: kept for another
    vi.advanceTimersByTime(1000)
    expect(b.idleBytes).toBe(2048)
    vi.advanceTimersByTime(1000)
    expect(b.idleBytes).toBe(0)
  })
})

const D = `sha256:${'a'.repeat(64)}` as Digest
const peer = { toString: () => 'peer-1' } as unknown as PeerId

/** Four 100-byte chunks; `honours` says whether it reads into the buffer it is given. */
function source(honours: boolean, calls: (Uint8Array | undefined)[]): ChunkSource {
  return {
    map: async () => undefined,
    have: () => ({ size: 400, chunkSize: 100, bitfield: Bitfield.full(4), complete: true }),
    waitHave: async () => {},
    readChunk: async (_d, index, _ctx, into) => {
      calls.push(into)
      if (index === 3) return undefined
      const bytes = new Uint8Array(100).fill(index + 1)
      if (!honours || into === undefined) return { bytes }
      into.set(bytes)
      return { bytes: into }
    },
  }
}

describe('takeChunk with send buffers', () => {
  it('reads into a pooled buffer, which is reused for the next chunk once released', async () => {
    const buffers = new ChunkBuffers({ maxBytes: 1000, idleMs: 60_000 })
    const calls: (Uint8Array | undefined)[] = []
    const src = source(true, calls)
    const ctx = { peer, signal: new AbortController().signal }
    const first = await takeChunk(src, new UploadSlots(2), D, 0, ctx, buffers)
    if (first.t !== 'chunk') throw new Error(first.t)
    expect(first.bytes).toBe(calls[0])
    expect([...first.bytes.subarray(0, 3)]).toEqual([1, 1, 1])
    first.release()
    first.release()
    expect(buffers.idleBytes).toBe(100)
    const second = await takeChunk(src, new UploadSlots(2), D, 1, ctx, buffers)
    if (second.t !== 'chunk') throw new Error(second.t)
    expect(second.bytes).toBe(first.bytes)
    expect([...second.bytes.subarray(0, 3)]).toEqual([2, 2, 2])
    second.release()
    // A chunk the source does not hold: the buffer goes back at once.
    expect((await takeChunk(src, new UploadSlots(2), D, 3, ctx, buffers)).t).toBe('none')
    expect(buffers.idleBytes).toBe(100)
  })

  it('a source that ignores the buffer still serves its own bytes', async () => {
    const buffers = new ChunkBuffers({ maxBytes: 1000, idleMs: 60_000 })
    const calls: (Uint8Array | undefined)[] = []
    const got = await takeChunk(
      source(false, calls),
      new UploadSlots(2),
      D,
      2,
      { peer, signal: new AbortController().signal },
      buffers,
    )
    if (got.t !== 'chunk') throw new Error(got.t)
    expect(got.bytes).not.toBe(calls[0])
    expect([...got.bytes.subarray(0, 3)]).toEqual([3, 3, 3])
    got.release()
  })
})
