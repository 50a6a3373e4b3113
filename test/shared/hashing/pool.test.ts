import { createHash, randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { type HashPool, inlineHashing, WorkerHashPool } from '../../../shared/hashing/index.ts'
import { type Digest, digestOf } from '../../../shared/oci/digest.ts'

const pools: WorkerHashPool[] = []
const pool = (opts: ConstructorParameters<typeof WorkerHashPool>[0] = {}): WorkerHashPool => {
  const p = new WorkerHashPool(opts)
  pools.push(p)
  return p
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.stop()))
})

const sha512Of = (b: Uint8Array): Digest => `sha512:${createHash('sha512').update(b).digest('hex')}` as Digest

/** The bytes cut into pieces of `size`, each a copy in memory of its own (as socket reads arrive). */
function ownPieces(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let i = 0; i < bytes.byteLength; i += size) out.push(new Uint8Array(bytes.subarray(i, i + size)))
  return out
}

describe.each<[string, () => HashPool]>([
  ['inline', () => inlineHashing],
  ['worker threads', () => pool({ threads: 2 })],
])('hashing %s', (_name, make) => {
  it('digests the bytes given over many updates, in the algorithm of the expected digest', async () => {
    const bytes = randomBytes(3 * 65536 + 123)
    const hashes = make()
    for (const [expected, algo] of [
      [digestOf(bytes), 'sha256'],
      [sha512Of(bytes), 'sha512'],
    ] as const) {
      const h = hashes.hasher(expected)
      const pieces = ownPieces(bytes, 65536)
      h.update(pieces.slice(0, 2))
      h.update(pieces.slice(2), { transfer: true })
      expect(await h.digest()).toBe(expected)
      expect(expected.startsWith(`${algo}:`)).toBe(true)
    }
  })

  it('keeps many blobs apart, fed interleaved', async () => {
    const hashes = make()
    const blobs = Array.from({ length: 5 }, (_, i) => randomBytes(100_000 + i))
    const hashers = blobs.map((b) => hashes.hasher(digestOf(b)))
    const pieces = blobs.map((b) => ownPieces(b, 7_000))
    for (let k = 0; k < Math.max(...pieces.map((p) => p.length)); k++) {
      for (let i = 0; i < blobs.length; i++) if (k < pieces[i]!.length) hashers[i]!.update([pieces[i]![k]!])
    }
    expect(await Promise.all(hashers.map((h) => h.digest()))).toEqual(blobs.map((b) => digestOf(b)))
  })

  it('empties a given-up piece that ends its buffer, once hashed', async () => {
    const bytes = randomBytes(65536)
    const piece = new Uint8Array(bytes)
    const h = make().hasher(digestOf(bytes))
    h.update([piece], { transfer: true })
    expect(piece.byteLength).toBe(0)
    expect(await h.digest()).toBe(digestOf(bytes))
  })

  it("never takes Node's shared buffer pool, even a piece that ends it", async () => {
    // Small buffers share one pool buffer: fill the rest of the current one exactly, after a neighbour.
    let before = Buffer.allocUnsafe(8).fill(1)
    while (before.buffer.byteLength - (before.byteOffset + 8) >= Buffer.poolSize >>> 1) {
      before = Buffer.allocUnsafe(8).fill(1)
    }
    const rest = before.buffer.byteLength - (before.byteOffset + 8)
    const last: Buffer | undefined = rest > 0 ? Buffer.allocUnsafe(rest).fill(2) : undefined
    expect(last).toBeDefined()
    expect(last!.buffer).toBe(before.buffer)
    expect(last!.byteOffset + last!.byteLength).toBe(last!.buffer.byteLength)
    const expected = Buffer.from(last!)
    const h = make().hasher(digestOf(expected))
    h.update([last!], { transfer: true })
    expect(Buffer.from(last!)).toEqual(expected)
    expect(before).toEqual(Buffer.alloc(8, 1))
    expect(await h.digest()).toBe(digestOf(expected))
  })

  it('is spent after its digest', async () => {
    const h = make().hasher(digestOf(Buffer.alloc(0)))
    expect(await h.digest()).toBe(digestOf(Buffer.alloc(0)))
    await expect(h.digest()).rejects.toThrow(/spent/)
  })
})

describe('WorkerHashPool', () => {
  it('copies, without emptying them, pieces not given up or sharing a buffer past their end', async () => {
    const whole = randomBytes(4096 * 4)
    const backing = new Uint8Array(whole)
    const first = backing.subarray(0, 4096)
    const rest = backing.subarray(4096)
    const kept = new Uint8Array(randomBytes(1000))
    const h = pool().hasher(digestOf(Buffer.concat([first, kept, rest])))
    // `first` ends before its buffer does: moving the buffer would empty `rest`, still to come.
    h.update([first], { transfer: true })
    expect(first.byteLength).toBe(4096)
    // Not given up: copied.
    const keptCopy = Buffer.from(kept)
    h.update([kept])
    expect(Buffer.from(kept)).toEqual(keptCopy)
    h.update([rest], { transfer: true })
    expect(rest.byteLength).toBe(0)
    expect(await h.digest()).toBe(digestOf(Buffer.concat([whole.subarray(0, 4096), keptCopy, whole.subarray(4096)])))
  })

  it('forgets a dropped hash, and starts no more threads than allowed', async () => {
    const p = pool({ threads: 2 })
    const a = p.hasher(digestOf(Buffer.from('a')))
    const b = p.hasher(digestOf(Buffer.from('b')))
    const c = p.hasher(digestOf(Buffer.from('c')))
    expect(p.threads).toBe(2)
    a.drop()
    await expect(a.digest()).rejects.toThrow(/spent/)
    c.update([Buffer.from('c')])
    b.update([Buffer.from('b')])
    expect(await c.digest()).toBe(digestOf(Buffer.from('c')))
    expect(await b.digest()).toBe(digestOf(Buffer.from('b')))
  })

  it('stops a thread with no hash open once it has been idle, and starts one again when needed', async () => {
    const p = pool({ threads: 1, idleMs: 20 })
    const h = p.hasher(digestOf(Buffer.from('x')))
    h.update([Buffer.from('x')])
    await h.digest()
    expect(p.threads).toBe(1)
    await expect.poll(() => p.threads, { timeout: 2_000, interval: 10 }).toBe(0)
    const again = p.hasher(digestOf(Buffer.from('y')))
    again.update([Buffer.from('y')])
    expect(await again.digest()).toBe(digestOf(Buffer.from('y')))
  })

  it('asks its caller to wait while the thread is further behind than allowed, until it caught up', async () => {
    const bytes = randomBytes(4 * 65536)
    const tight = pool({ threads: 1, backlogBytes: 0 }).hasher(digestOf(bytes))
    const pieces = ownPieces(bytes, 65536)
    const behind = tight.update(pieces.slice(0, 2), { transfer: true })
    expect(behind).toBeInstanceOf(Promise)
    await behind
    await tight.update(pieces.slice(2), { transfer: true })
    expect(await tight.digest()).toBe(digestOf(bytes))
    const roomy = pool({ threads: 1 }).hasher(digestOf(bytes))
    expect(roomy.update(ownPieces(bytes, 65536))).toBeUndefined()
    expect(await roomy.digest()).toBe(digestOf(bytes))
  })

  it('reads shared memory in place, and says when it is done with it so its owner can reuse it', async () => {
    const bytes = randomBytes(3 * 65536)
    const p = pool({ threads: 1 })
    const h = p.hasher(digestOf(bytes))
    // One buffer, refilled with the next bytes as soon as the thread is done with the last.
    const buffer = p.sharedBuffer(65536)
    expect(buffer.buffer).toBeInstanceOf(SharedArrayBuffer)
    for (let at = 0; at < bytes.byteLength; at += 65536) {
      buffer.set(bytes.subarray(at, at + 65536))
      const done = h.update([buffer], { transfer: true })
      expect(done).toBeInstanceOf(Promise)
      await done
      expect(buffer.byteLength).toBe(65536)
    }
    expect(await h.digest()).toBe(digestOf(bytes))
  })

  it('fails the digest of a hash whose thread stopped', async () => {
    const p = pool()
    const h = p.hasher(digestOf(Buffer.from('z')))
    h.update([Buffer.from('z')])
    await p.stop()
    await expect(h.digest()).rejects.toThrow(/hashing thread/)
    expect(() => p.hasher(digestOf(Buffer.from('z')))).toThrow(/stopped/)
  })
})
