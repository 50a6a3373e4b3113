/**
 * The contract every ContentStore + ManifestCache implementation passes. Call contentStoreConformance from an
 * implementation's test file with a factory that opens a fresh, empty store.
 */
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import type { Digest } from '../../../shared/oci/digest.ts'
import { digestOf } from '../../../shared/oci/digest.ts'
import type { ContentStore, ManifestCache, PartialBlob, StoreOptions } from '../../../shared/store/index.ts'
import { blobOf, bytesOf, chunkOf, collect, expectBytes, fakeClock, putBlob } from './helpers.ts'

export interface StoreHarness {
  readonly blobs: ContentStore
  readonly manifests: ManifestCache
  /** Idempotent. */
  stop(): Promise<void>
}

export type StoreFactory = (opts: StoreOptions) => Promise<StoreHarness>

const BAD_DIGEST = 'sha256:../../../../etc/passwd' as Digest
/** [start, end) ranges of a 10,000-byte blob cut in 4096-byte chunks: first and last bytes, across a chunk end, empty, whole. */
const EDGE_RANGES = [
  [0, 1],
  [4095, 4097],
  [9999, 10_000],
  [5000, 5000],
  [0, 10_000],
] as const

export function contentStoreConformance(name: string, factory: StoreFactory): void {
  describe(`${name}: ContentStore conformance`, () => {
    let open: StoreHarness[] = []
    const make = async (opts: StoreOptions = {}): Promise<StoreHarness> => {
      const h = await factory({ now: fakeClock(), ...opts })
      open.push(h)
      return h
    }
    afterEach(async () => {
      await Promise.all(open.map((h) => h.stop()))
      open = []
    })

    describe('complete blobs', () => {
      it('stores a blob written with append and reads it whole and by range', async () => {
        const { blobs } = await make()
        const blob = blobOf(10_000, 1)
        await putBlob(blobs, blob, { chunkSize: 4096, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' })
        const info = await blobs.stat(blob.digest)
        expect(info).toMatchObject({
          digest: blob.digest,
          size: 10_000,
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        })
        const whole = await blobs.read(blob.digest)
        expect(whole?.info.digest).toBe(blob.digest)
        expectBytes(await collect(whole!.stream), blob.bytes)
        for (const [start, end] of EDGE_RANGES) {
          const r = await blobs.read(blob.digest, { start, end })
          expectBytes(await collect(r!.stream), blob.bytes.subarray(start, end))
        }
        const listed = []
        for await (const b of blobs.list()) listed.push(b.digest)
        expect(listed).toEqual([blob.digest])
        expect(blobs.usage()).toEqual({ bytes: 10_000, blobs: 1, maxBytes: Number.POSITIVE_INFINITY })
      })

      it('readRange: any range in one buffer, many at once on one blob, and the blob LRU-touched', async () => {
        const { blobs } = await make({ maxBytes: 25_000 })
        const blob = blobOf(10_000, 11)
        const other = blobOf(10_000, 12)
        await putBlob(blobs, blob, { chunkSize: 4096 })
        await putBlob(blobs, other, { chunkSize: 4096 })
        for (const [start, end] of EDGE_RANGES) {
          expectBytes((await blobs.readRange(blob.digest, { start, end }))!, blob.bytes.subarray(start, end))
        }
        const ranges = Array.from({ length: 40 }, (_, i) => ({ start: i * 250, end: i * 250 + 250 }))
        const got = await Promise.all(ranges.map((r) => blobs.readRange(blob.digest, r)))
        got.forEach((bytes, i) => expectBytes(bytes!, blob.bytes.subarray(ranges[i]!.start, ranges[i]!.end)))
        // Into the caller's buffer, which must be exactly the range's length.
        const into = new Uint8Array(250)
        expect(await blobs.readRange(blob.digest, { start: 250, end: 500 }, into)).toBe(into)
        expectBytes(into, blob.bytes.subarray(250, 500))
        await expect(blobs.readRange(blob.digest, { start: 0, end: 100 }, into)).rejects.toThrow(RangeError)
        expect(await blobs.readRange(blobOf(10, 13).digest, { start: 0, end: 1 })).toBeUndefined()
        await expect(blobs.readRange(blob.digest, { start: 0, end: 10_001 })).rejects.toMatchObject({
          code: 'RANGE_INVALID',
        })
        // `blob` was read last: a third blob that needs room evicts `other`.
        await putBlob(blobs, blobOf(10_000, 14))
        expect(await blobs.stat(blob.digest)).toBeDefined()
        expect(await blobs.stat(other.digest)).toBeUndefined()
      })

      it('readRange of a deleted blob is undefined; one committed again is read afresh', async () => {
        const { blobs } = await make()
        const blob = blobOf(5000, 15)
        await putBlob(blobs, blob)
        expectBytes((await blobs.readRange(blob.digest, { start: 10, end: 20 }))!, blob.bytes.subarray(10, 20))
        expect(await blobs.delete(blob.digest)).toBe(true)
        expect(await blobs.readRange(blob.digest, { start: 10, end: 20 })).toBeUndefined()
        await putBlob(blobs, blob)
        expectBytes((await blobs.readRange(blob.digest, { start: 0, end: 5000 }))!, blob.bytes)
        await expect(blobs.readRange(BAD_DIGEST, { start: 0, end: 1 })).rejects.toMatchObject({
          code: 'DIGEST_INVALID',
        })
      })

      it('rejects ranges outside the blob with RANGE_INVALID', async () => {
        const { blobs } = await make()
        const blob = blobOf(100, 2)
        await putBlob(blobs, blob)
        for (const range of [
          { start: 5, end: 4 },
          { start: 0, end: 101 },
          { start: -1, end: 2 },
          { start: 0.5, end: 2 },
        ]) {
          await expect(blobs.read(blob.digest, range)).rejects.toMatchObject({
            name: 'InvalidRangeError',
            code: 'RANGE_INVALID',
          })
        }
      })

      it('answers unknown digests with undefined/false and refuses digests that are not digests', async () => {
        const { blobs } = await make()
        const unknown = blobOf(10, 3).digest
        expect(await blobs.stat(unknown)).toBeUndefined()
        expect(await blobs.read(unknown)).toBeUndefined()
        expect(await blobs.delete(unknown)).toBe(false)
        expect(blobs.getPartial(unknown)).toBeUndefined()
        const invalid = { code: 'DIGEST_INVALID' }
        await expect(blobs.stat(BAD_DIGEST)).rejects.toMatchObject(invalid)
        await expect(blobs.read(BAD_DIGEST)).rejects.toMatchObject(invalid)
        await expect(blobs.delete(BAD_DIGEST)).rejects.toMatchObject(invalid)
        await expect(blobs.openPartial(BAD_DIGEST, { size: 1, chunkSize: 1 })).rejects.toMatchObject(invalid)
        expect(() => blobs.pin(BAD_DIGEST)).toThrow(expect.objectContaining(invalid))
      })

      it('stores a zero-byte blob and a sha512-named blob', async () => {
        const { blobs } = await make()
        const empty = blobOf(0, 0)
        const p = await blobs.openPartial(empty.digest, { size: 0, chunkSize: 1000 })
        expect(p.chunkCount).toBe(0)
        await p.commit()
        expect((await blobs.stat(empty.digest))?.size).toBe(0)
        expect(await collect((await blobs.read(empty.digest))!.stream)).toHaveLength(0)

        const bytes = bytesOf(3000, 4)
        const digest = digestOf(bytes, 'sha512')
        await putBlob(blobs, { bytes, digest })
        expectBytes(await collect((await blobs.read(digest))!.stream), bytes)
      })

      it('refuses to open a partial for a blob that is already complete', async () => {
        const { blobs } = await make()
        const blob = blobOf(100, 5)
        await putBlob(blobs, blob)
        await expect(blobs.openPartial(blob.digest, { size: 100, chunkSize: 10 })).rejects.toMatchObject({
          name: 'BlobExistsError',
          code: 'BLOB_EXISTS',
        })
      })

      it('deletes unpinned blobs and reports them', async () => {
        const removed: [Digest, string][] = []
        const { blobs } = await make({ onEvict: (d, reason) => removed.push([d, reason]) })
        const blob = blobOf(100, 6)
        await putBlob(blobs, blob)
        expect(await blobs.delete(blob.digest)).toBe(true)
        expect(await blobs.stat(blob.digest)).toBeUndefined()
        expect(await blobs.read(blob.digest)).toBeUndefined()
        expect(removed).toEqual([[blob.digest, 'deleted']])
        expect(blobs.usage().bytes).toBe(0)
      })
    })

    describe('commit verifies the digest', () => {
      it('appended bytes that do not match: DigestMismatchError, nothing stored, reservation freed', async () => {
        const { blobs } = await make()
        const claimed = blobOf(2500, 7)
        const actual = bytesOf(2500, 8)
        const p = await blobs.openPartial(claimed.digest, { size: 2500, chunkSize: 1000 })
        await p.append(actual)
        await expect(p.commit()).rejects.toMatchObject({
          name: 'DigestMismatchError',
          code: 'DIGEST_MISMATCH',
          expected: claimed.digest,
          actual: digestOf(actual),
        })
        expect(p.state).toBe('discarded')
        expect(await blobs.stat(claimed.digest)).toBeUndefined()
        expect(await blobs.listPartials()).toEqual([])
        expect(blobs.usage()).toMatchObject({ bytes: 0, blobs: 0 })
        // The digest can be downloaded again from scratch.
        const again = await blobs.openPartial(claimed.digest, { size: 2500, chunkSize: 1000 })
        expect(again).not.toBe(p)
        expect(again.prefixBytes).toBe(0)
        await again.append(claimed.bytes)
        expect((await again.commit()).digest).toBe(claimed.digest)
      })

      it('chunks written out of order that do not match: rejected the same way', async () => {
        const { blobs } = await make()
        const claimed = blobOf(2500, 9)
        const actual = bytesOf(2500, 10)
        const p = await blobs.openPartial(claimed.digest, { size: 2500, chunkSize: 1000 })
        for (const i of [2, 0, 1]) await p.writeChunk(i, chunkOf(actual, i, 1000))
        await expect(p.commit()).rejects.toMatchObject({ name: 'DigestMismatchError' })
        expect(await blobs.stat(claimed.digest)).toBeUndefined()
        expect(blobs.usage().bytes).toBe(0)
      })

      it('refuses to commit while chunks are missing, and commits once they are there', async () => {
        const { blobs } = await make()
        const blob = blobOf(2500, 11)
        const p = await blobs.openPartial(blob.digest, { size: 2500, chunkSize: 1000 })
        await p.writeChunk(0, chunkOf(blob.bytes, 0, 1000))
        await p.writeChunk(2, chunkOf(blob.bytes, 2, 1000))
        await expect(p.commit()).rejects.toMatchObject({ name: 'IncompleteBlobError', code: 'BLOB_INCOMPLETE' })
        expect(p.state).toBe('open')
        await p.writeChunk(1, chunkOf(blob.bytes, 1, 1000))
        const [a, b] = await Promise.all([p.commit({ mediaType: 'x/y' }), p.commit()])
        expect(a).toBe(b)
        expect(a).toMatchObject({ digest: blob.digest, size: 2500, mediaType: 'x/y' })
        expect(p.state).toBe('committed')
        expect(blobs.getPartial(blob.digest)).toBeUndefined()
        expect(blobs.usage()).toMatchObject({ bytes: 2500, blobs: 1 })
        expectBytes(await collect((await blobs.read(blob.digest))!.stream), blob.bytes)
      })
    })

    describe('partials', () => {
      it('out-of-order writeChunk: bits at once, prefix over contiguous chunks, reads of what is written', async () => {
        const { blobs } = await make()
        const blob = blobOf(3500, 12)
        const p = await blobs.openPartial(blob.digest, { size: 3500, chunkSize: 1000 })
        expect(p.chunkCount).toBe(4)
        let progress = 0
        p.onProgress(() => progress++)
        const chunk = (i: number): Uint8Array => chunkOf(blob.bytes, i, 1000)

        await p.writeChunk(2, chunk(2))
        expect([p.prefixBytes, p.written.has(2), p.written.count]).toEqual([0, true, 1])
        expectBytes(await collect(p.read({ start: 2000, end: 3000 })), chunk(2))
        expectBytes(await p.readChunk(2), chunk(2))
        const into = new Uint8Array(chunk(2).byteLength)
        expect(await p.readChunk(2, { into })).toBe(into)
        expectBytes(into, chunk(2))
        await expect(p.readChunk(2, { into: new Uint8Array(1) })).rejects.toMatchObject({ name: 'SizeMismatchError' })
        expect(() => p.read({ start: 1500, end: 2500 })).toThrow(expect.objectContaining({ code: 'RANGE_NOT_WRITTEN' }))
        await expect(p.readChunk(0)).rejects.toMatchObject({ code: 'RANGE_NOT_WRITTEN' })

        await p.writeChunk(0, chunk(0))
        expect(p.prefixBytes).toBe(1000)
        await p.writeChunk(3, chunk(3))
        expect(p.prefixBytes).toBe(1000)
        await p.writeChunk(1, chunk(1))
        expect(p.prefixBytes).toBe(3500)
        expect(p.written.complete).toBe(true)
        expect(progress).toBe(4)
        expectBytes(await collect(p.read({ start: 0, end: 3500 })), blob.bytes)
        await p.commit()
        expectBytes(await collect((await blobs.read(blob.digest))!.stream), blob.bytes)
      })

      it('writeChunk checks the index and the length; rewriting a written chunk is a no-op', async () => {
        const { blobs } = await make()
        const blob = blobOf(3500, 13)
        const p = await blobs.openPartial(blob.digest, { size: 3500, chunkSize: 1000 })
        await expect(p.writeChunk(0, blob.bytes.subarray(0, 999))).rejects.toMatchObject({ code: 'SIZE_MISMATCH' })
        await expect(p.writeChunk(3, blob.bytes.subarray(0, 1000))).rejects.toMatchObject({ code: 'SIZE_MISMATCH' })
        for (const index of [-1, 4, 1.5]) {
          await expect(p.writeChunk(index, blob.bytes.subarray(0, 500))).rejects.toMatchObject({
            code: 'CHUNK_INDEX_INVALID',
          })
        }
        await p.writeChunk(3, chunkOf(blob.bytes, 3, 1000))
        await p.writeChunk(3, new Uint8Array(500))
        expectBytes(await p.readChunk(3), chunkOf(blob.bytes, 3, 1000))
        expect(p.written.count).toBe(1)
      })

      it('append sets chunk bits as chunk ends are reached and refuses bytes past the end', async () => {
        const { blobs } = await make()
        const blob = blobOf(2500, 14)
        const p = await blobs.openPartial(blob.digest, { size: 2500, chunkSize: 1000 })
        await p.append(blob.bytes.subarray(0, 1500))
        expect([p.prefixBytes, p.appendOffset, [...p.written.indexes()]]).toEqual([1500, 1500, [0]])
        expectBytes(await collect(p.read({ start: 1000, end: 1500 })), blob.bytes.subarray(1000, 1500))
        await expect(p.append(new Uint8Array(1001))).rejects.toMatchObject({ code: 'SIZE_MISMATCH' })
        expect(p.appendOffset).toBe(1500)
        await p.append(blob.bytes.subarray(1500))
        expect([p.prefixBytes, p.written.complete]).toEqual([2500, true])
        await p.commit()
        expect((await blobs.stat(blob.digest))?.size).toBe(2500)
      })

      it('append at an offset continues past chunks another writer put on disk, and never over a gap', async () => {
        const { blobs } = await make()
        const blob = blobOf(4500, 23)
        const p = await blobs.openPartial(blob.digest, { size: 4500, chunkSize: 1000 })
        await p.writeChunk(0, chunkOf(blob.bytes, 0, 1000))
        await p.writeChunk(1, chunkOf(blob.bytes, 1, 1000))
        await p.writeChunk(3, chunkOf(blob.bytes, 3, 1000))
        expect([p.prefixBytes, p.appendOffset]).toEqual([2000, 0])
        // Chunk 2 is missing: bytes for 3000 cannot be placed there.
        await expect(p.append(blob.bytes.subarray(3000, 4000), { at: 3000 })).rejects.toMatchObject({
          name: 'PartialStateError',
        })
        await expect(p.append(blob.bytes.subarray(2000, 2500), { at: 2000 })).resolves.toBeUndefined()
        expect([p.appendOffset, p.prefixBytes]).toEqual([2500, 2500])
        await expect(p.append(blob.bytes.subarray(1000, 1500), { at: 1000 })).rejects.toMatchObject({
          name: 'PartialStateError',
        })
        await p.append(blob.bytes.subarray(2500), { at: 2500 })
        await p.commit()
        expectBytes(await collect((await blobs.read(blob.digest))!.stream), blob.bytes)
      })

      it('appends queued behind a failed one reject; later ones continue at appendOffset', async () => {
        const { blobs } = await make()
        const blob = blobOf(3000, 15)
        const p = await blobs.openPartial(blob.digest, { size: 3000, chunkSize: 1000 })
        await p.append(blob.bytes.subarray(0, 1000))
        const aborted = AbortSignal.abort()
        const failed = p.append(blob.bytes.subarray(1000, 2000), { signal: aborted })
        const behind = p.append(blob.bytes.subarray(2000, 3000))
        await expect(failed).rejects.toMatchObject({ name: 'AbortError' })
        await expect(behind).rejects.toMatchObject({ name: 'PartialStateError' })
        expect(p.appendOffset).toBe(1000)
        await p.append(blob.bytes.subarray(1000))
        await p.commit()
        expectBytes(await collect((await blobs.read(blob.digest))!.stream), blob.bytes)
      })

      it('append does not overwrite chunks written by writeChunk', async () => {
        const { blobs } = await make()
        const blob = blobOf(3000, 16)
        const p = await blobs.openPartial(blob.digest, { size: 3000, chunkSize: 1000 })
        await p.writeChunk(1, chunkOf(blob.bytes, 1, 1000))
        const corrupt = blob.bytes.slice()
        corrupt.fill(0, 1000, 2000)
        await p.append(corrupt)
        expectBytes(await p.readChunk(1), chunkOf(blob.bytes, 1, 1000))
        // The digest is taken from what is on disk, not from the appended bytes.
        expect((await p.commit()).digest).toBe(blob.digest)
      })

      it('append of a piece list writes the pieces back to back, around chunks written by writeChunk', async () => {
        const { blobs } = await make()
        const blob = blobOf(5000, 17)
        const p = await blobs.openPartial(blob.digest, { size: 5000, chunkSize: 1000 })
        await p.writeChunk(2, chunkOf(blob.bytes, 2, 1000))
        // Pieces of uneven sizes, one empty, one starting inside the chunk already written and one ending in it.
        const cuts = [0, 1, 700, 700, 1999, 2500, 2999, 3001, 4200]
        // The chunk already on disk keeps its bytes: what an append brings for it is skipped.
        const corrupt = blob.bytes.slice()
        corrupt.fill(0, 2000, 3000)
        await p.append(cuts.map((c, i) => corrupt.subarray(c, cuts[i + 1] ?? 4200)))
        expect(p.appendOffset).toBe(4200)
        expect(p.prefixBytes).toBe(4200)
        expect([...Array(5).keys()].map((i) => p.written.has(i))).toEqual([true, true, true, true, false])
        await p.append([blob.bytes.subarray(4200, 4600), blob.bytes.subarray(4600)])
        expectBytes(await collect(p.read({ start: 0, end: 5000 })), blob.bytes)
        expect((await p.commit()).digest).toBe(blob.digest)
      })

      it('append of pieces given up (transfer) stores the same bytes and checks the same digest', async () => {
        const { blobs } = await make()
        const blob = blobOf(5000, 18)
        // Each piece in memory of its own, as socket reads are: the store may take it.
        const own = (from: number, to: number) => new Uint8Array(blob.bytes.subarray(from, to))
        const p = await blobs.openPartial(blob.digest, { size: 5000, chunkSize: 1000 })
        await p.append([own(0, 1500), own(1500, 1600)], { transfer: true })
        await p.append([own(1600, 5000)], { transfer: true })
        expectBytes(await collect(p.read({ start: 0, end: 5000 })), blob.bytes)
        expect((await p.commit()).digest).toBe(blob.digest)
        const wrong = blobOf(3000, 19)
        const q = await blobs.openPartial(wrong.digest, { size: 3000, chunkSize: 1000 })
        await q.append([new Uint8Array(bytesOf(3000, 20))], { transfer: true })
        await expect(q.commit()).rejects.toMatchObject({ name: 'DigestMismatchError', expected: wrong.digest })
      })

      it('opening a digest twice gives the same object; another size or chunk size is a conflict', async () => {
        const { blobs } = await make()
        const blob = blobOf(2000, 17)
        const [a, b] = await Promise.all([
          blobs.openPartial(blob.digest, { size: 2000, chunkSize: 500 }),
          blobs.openPartial(blob.digest, { size: 2000, chunkSize: 500 }),
        ])
        expect(a).toBe(b)
        expect(blobs.getPartial(blob.digest)).toBe(a)
        await expect(blobs.openPartial(blob.digest, { size: 2000, chunkSize: 400 })).rejects.toMatchObject({
          code: 'PARTIAL_CONFLICT',
        })
        await expect(blobs.openPartial(blob.digest, { size: 2001, chunkSize: 500 })).rejects.toMatchObject({
          code: 'PARTIAL_CONFLICT',
        })
        expect(blobs.usage().bytes).toBe(2000)
        await a.writeChunk(1, chunkOf(blob.bytes, 1, 500))
        expect(await blobs.listPartials()).toEqual([
          { digest: blob.digest, size: 2000, chunkSize: 500, prefixBytes: 0, chunksWritten: 1, open: true },
        ])
      })

      it('discard frees the reservation; the digest can be opened afresh', async () => {
        const { blobs } = await make({ maxBytes: 3000 })
        const blob = blobOf(2000, 18)
        const p = await blobs.openPartial(blob.digest, { size: 2000, chunkSize: 500 })
        await p.writeChunk(0, chunkOf(blob.bytes, 0, 500))
        await p.discard()
        expect(p.state).toBe('discarded')
        await expect(p.writeChunk(1, chunkOf(blob.bytes, 1, 500))).rejects.toMatchObject({ code: 'PARTIAL_STATE' })
        expect(blobs.usage().bytes).toBe(0)
        expect(await blobs.listPartials()).toEqual([])
        const q = await blobs.openPartial(blob.digest, { size: 2000, chunkSize: 500 })
        expect(q.written.count).toBe(0)
      })

      it('readers follow a partial while chunks land out of order, across the commit', async () => {
        const { blobs } = await make()
        const blob = blobOf(10_000, 19)
        const p = await blobs.openPartial(blob.digest, { size: 10_000, chunkSize: 1000 })
        const whole = collect(p.follow())
        const middle = collect(p.follow({ start: 2500, end: 7500 }))
        const tail = collect(p.follow({ start: 9000, end: 10_000 }))
        // A follower that is not read from until after the commit.
        const late = p.follow({ start: 0, end: 10_000 })
        const order = [9, 3, 0, 1, 5, 2, 4, 8, 6, 7]
        const snapshots: Promise<Uint8Array>[] = []
        for (const i of order) {
          await p.writeChunk(i, chunkOf(blob.bytes, i, 1000))
          // Readers of what is there so far, while later chunks are still being written.
          if (p.prefixBytes > 0) snapshots.push(collect(p.read({ start: 0, end: p.prefixBytes })))
        }
        expectBytes(await tail, blob.bytes.subarray(9000))
        await p.commit()
        expectBytes(await whole, blob.bytes)
        expectBytes(await middle, blob.bytes.subarray(2500, 7500))
        expectBytes(await collect(late), blob.bytes)
        for (const s of snapshots) {
          const got = await s
          expectBytes(got, blob.bytes.subarray(0, got.byteLength))
        }
      })

      it('a follower holding its last byte gets it with the commit; a failed digest ends it in an error first', async () => {
        const { blobs } = await make()
        const watch = (r: Readable) => {
          const got: Buffer[] = []
          const ended = new Promise<Uint8Array>((resolve, reject) => {
            r.on('data', (b: Buffer) => got.push(b))
            r.on('end', () => resolve(new Uint8Array(Buffer.concat(got))))
            r.on('error', reject)
          })
          ended.catch(() => {})
          return { bytes: () => got.reduce((n, b) => n + b.byteLength, 0), ended }
        }
        const blob = blobOf(3000, 24)
        const p = await blobs.openPartial(blob.digest, { size: 3000, chunkSize: 1000 })
        const whole = watch(p.follow(undefined, { holdLastByte: true }))
        const middle = watch(p.follow({ start: 500, end: 1500 }, { holdLastByte: true }))
        await p.append(blob.bytes)
        await expect.poll(() => [whole.bytes(), middle.bytes()]).toEqual([2999, 999])
        await new Promise((r) => setTimeout(r, 20))
        expect([whole.bytes(), middle.bytes()]).toEqual([2999, 999])
        await p.commit()
        expectBytes(await whole.ended, blob.bytes)
        expectBytes(await middle.ended, blob.bytes.subarray(500, 1500))

        const other = blobOf(2000, 25)
        const wrong = bytesOf(2000, 26)
        const q = await blobs.openPartial(other.digest, { size: 2000, chunkSize: 1000 })
        const failing = watch(q.follow(undefined, { holdLastByte: true }))
        await q.append(wrong)
        await expect(q.commit()).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' })
        await expect(failing.ended).rejects.toMatchObject({ name: 'PartialStateError' })
        expect(failing.bytes()).toBeLessThan(2000)
      })

      it('a follower fails when the partial is discarded before its bytes arrive', async () => {
        const { blobs } = await make()
        const blob = blobOf(2000, 20)
        const p = await blobs.openPartial(blob.digest, { size: 2000, chunkSize: 1000 })
        // The expectation is attached now: the follower fails during the discard's I/O.
        const follower = expect(collect(p.follow())).rejects.toMatchObject({ name: 'PartialStateError' })
        await p.writeChunk(0, chunkOf(blob.bytes, 0, 1000))
        await p.discard()
        await follower
      })

      it('any order of appends and chunk writes keeps prefix and bitfield exact and commits the blob', async () => {
        const { blobs } = await make()
        const plan = fc
          .record({ chunkSize: fc.integer({ min: 1, max: 300 }), count: fc.integer({ min: 0, max: 25 }) })
          .chain(({ chunkSize, count }) =>
            fc.record({
              chunkSize: fc.constant(chunkSize),
              size:
                count === 0 ? fc.constant(0) : fc.integer({ min: (count - 1) * chunkSize + 1, max: count * chunkSize }),
              order: fc.shuffledSubarray([...Array(count).keys()], { minLength: count, maxLength: count }),
              appendFirst: fc.integer({ min: 0, max: count * chunkSize }),
              seed: fc.integer({ min: 0, max: 1_000_000 }),
            }),
          )
        await fc.assert(
          fc.asyncProperty(plan, async ({ chunkSize, size, order, appendFirst, seed }) => {
            const blob = blobOf(size, seed)
            const p = await blobs.openPartial(blob.digest, { size, chunkSize })
            const onDisk = new Uint8Array(size)
            const check = (): void => {
              const prefix = onDisk.indexOf(0)
              expect(p.prefixBytes).toBe(prefix < 0 ? size : prefix)
              for (let i = 0; i < p.chunkCount; i++) {
                const full = onDisk.subarray(i * chunkSize, (i + 1) * chunkSize).every((b) => b === 1)
                expect(p.written.has(i)).toBe(full)
              }
            }
            const appended = Math.min(appendFirst, size)
            for (let off = 0; off < appended; off += 97) {
              const end = Math.min(appended, off + 97)
              await p.append(blob.bytes.subarray(off, end))
              onDisk.fill(1, off, end)
              check()
            }
            for (const i of order) {
              await p.writeChunk(i, chunkOf(blob.bytes, i, chunkSize))
              onDisk.fill(1, i * chunkSize, (i + 1) * chunkSize)
              check()
            }
            expect((await p.commit()).digest).toBe(blob.digest)
            expectBytes(await collect((await blobs.read(blob.digest))!.stream), blob.bytes)
            expect(await blobs.delete(blob.digest)).toBe(true)
          }),
          { numRuns: 30 },
        )
      })
    })

    describe('pins, eviction and quota', () => {
      /** Three 1000-byte blobs stored in order A, B, C. */
      const threeBlobs = async (h: StoreHarness) => {
        const a = blobOf(1000, 21)
        const b = blobOf(1000, 22)
        const c = blobOf(1000, 23)
        for (const x of [a, b, c]) await putBlob(h.blobs, x)
        return { a, b, c }
      }

      it('evicts the least recently used blobs first, and never past the quota', async () => {
        const evicted: Digest[] = []
        const h = await make({ maxBytes: 3000, onEvict: (d) => evicted.push(d) })
        const { a, b, c } = await threeBlobs(h)
        const atFirst = (await h.blobs.stat(a.digest))!.lastAccess
        await collect((await h.blobs.read(a.digest))!.stream)
        expect((await h.blobs.stat(a.digest))!.lastAccess).toBeGreaterThan(atFirst)
        const d = blobOf(1000, 24)
        const pd = await h.blobs.openPartial(d.digest, { size: 1000, chunkSize: 1000 })
        expect(evicted).toEqual([b.digest])
        expect(h.blobs.usage()).toMatchObject({ bytes: 3000, blobs: 2 })
        await pd.append(d.bytes)
        await pd.commit()
        expect(h.blobs.usage().bytes).toBeLessThanOrEqual(3000)
        await putBlob(h.blobs, blobOf(1500, 25))
        expect(evicted).toEqual([b.digest, c.digest, a.digest])
        expect(await h.blobs.stat(d.digest)).toBeDefined()
        expect(h.blobs.usage()).toMatchObject({ bytes: 2500, blobs: 2, maxBytes: 3000 })
      })

      it('never evicts or deletes a pinned blob', async () => {
        const removed: [Digest, string][] = []
        const h = await make({ maxBytes: 3000, onEvict: (d, reason) => removed.push([d, reason]) })
        const { a, b } = await threeBlobs(h)
        const unpin = h.blobs.pin(a.digest)
        const unpinAgain = h.blobs.pin(a.digest)
        await h.blobs.openPartial(blobOf(1000, 26).digest, { size: 1000, chunkSize: 1000 })
        expect(removed).toEqual([[b.digest, 'evicted']])
        await expect(h.blobs.delete(a.digest)).rejects.toMatchObject({ name: 'BlobPinnedError', code: 'BLOB_PINNED' })
        unpin()
        unpin()
        await expect(h.blobs.delete(a.digest)).rejects.toMatchObject({ code: 'BLOB_PINNED' })
        unpinAgain()
        expect(await h.blobs.delete(a.digest)).toBe(true)
        expect(removed.at(-1)).toEqual([a.digest, 'deleted'])
      })

      it('an open read stream pins its blob until the stream is destroyed', async () => {
        const h = await make({ maxBytes: 2000 })
        const a = blobOf(2000, 27)
        await putBlob(h.blobs, a)
        const { stream } = (await h.blobs.read(a.digest, { start: 0, end: 10 }))!
        const next = blobOf(1000, 28)
        await expect(h.blobs.openPartial(next.digest, { size: 1000, chunkSize: 100 })).rejects.toMatchObject({
          name: 'StoreFullError',
          code: 'STORE_FULL',
        })
        await expect(h.blobs.delete(a.digest)).rejects.toMatchObject({ code: 'BLOB_PINNED' })
        stream.destroy()
        await once(stream, 'close')
        await h.blobs.openPartial(next.digest, { size: 1000, chunkSize: 100 })
        expect(await h.blobs.stat(a.digest)).toBeUndefined()
      })

      it('counts reservations, refuses what cannot fit without evicting in vain, frees on discard', async () => {
        const h = await make({ maxBytes: 2500 })
        const a = blobOf(1000, 29)
        await putBlob(h.blobs, a)
        const x = await h.blobs.openPartial(blobOf(1500, 30).digest, { size: 1500, chunkSize: 500 })
        expect(h.blobs.usage().bytes).toBe(2500)
        const y = blobOf(2000, 31)
        // Evicting A would not make room (X's reservation cannot be evicted), so A stays.
        await expect(h.blobs.openPartial(y.digest, { size: 2000, chunkSize: 500 })).rejects.toMatchObject({
          code: 'STORE_FULL',
        })
        expect(await h.blobs.stat(a.digest)).toBeDefined()
        await expect(
          h.blobs.openPartial(blobOf(2501, 32).digest, { size: 2501, chunkSize: 500 }),
        ).rejects.toMatchObject({ code: 'STORE_FULL' })
        await x.discard()
        expect(h.blobs.usage().bytes).toBe(1000)
        await h.blobs.openPartial(y.digest, { size: 2000, chunkSize: 500 })
        expect(h.blobs.usage()).toMatchObject({ bytes: 2000, blobs: 0 })
      })
    })

    describe('manifests and tags', () => {
      it('keeps manifests by digest and re-checks the digest', async () => {
        const { manifests } = await make()
        const bytes = new TextEncoder().encode('{"schemaVersion":2}')
        const digest = digestOf(bytes)
        const mediaType = 'application/vnd.oci.image.manifest.v1+json'
        expect(await manifests.getManifest(digest)).toBeUndefined()
        await manifests.putManifest(digest, mediaType, bytes)
        const got = await manifests.getManifest(digest)
        expect(got?.mediaType).toBe(mediaType)
        expectBytes(got!.bytes, bytes)
        got!.bytes.fill(0)
        expectBytes((await manifests.getManifest(digest))!.bytes, bytes)
        const other = digestOf(new TextEncoder().encode('{}'))
        await expect(manifests.putManifest(other, mediaType, bytes)).rejects.toMatchObject({
          name: 'DigestMismatchError',
        })
        expect(await manifests.getManifest(other)).toBeUndefined()
        await expect(manifests.putManifest(BAD_DIGEST, mediaType, bytes)).rejects.toMatchObject({
          code: 'DIGEST_INVALID',
        })
      })

      it('keeps the latest resolution of each tag', async () => {
        const { manifests } = await make()
        const key = 'registry-1.docker.io/library/alpine:3.20'
        const first = { digest: blobOf(1, 33).digest, mediaType: 'a/b', resolvedAt: 1 }
        const second = { digest: blobOf(1, 34).digest, mediaType: 'a/b', resolvedAt: 2 }
        expect(await manifests.getTag(key)).toBeUndefined()
        await manifests.putTag(key, first)
        await manifests.putTag(key, second)
        expect(await manifests.getTag(key)).toEqual(second)
        expect(await manifests.getTag(`${key}x`)).toBeUndefined()
        await expect(manifests.putTag(key, { ...first, digest: BAD_DIGEST })).rejects.toMatchObject({
          code: 'DIGEST_INVALID',
        })
      })
    })

    describe('close', () => {
      it('closes open partials and refuses further work', async () => {
        const h = await make()
        const blob = blobOf(2000, 35)
        const p: PartialBlob = await h.blobs.openPartial(blob.digest, { size: 2000, chunkSize: 1000 })
        await p.writeChunk(0, chunkOf(blob.bytes, 0, 1000))
        const follower = expect(collect(p.follow())).rejects.toMatchObject({ name: 'PartialStateError' })
        await h.blobs.stop()
        expect(p.state).toBe('closed')
        await follower
        await expect(p.writeChunk(1, chunkOf(blob.bytes, 1, 1000))).rejects.toMatchObject({ code: 'STORE_CLOSED' })
        await expect(h.blobs.read(blob.digest)).rejects.toMatchObject({ code: 'STORE_CLOSED' })
        await expect(h.blobs.openPartial(blob.digest, { size: 2000, chunkSize: 1000 })).rejects.toMatchObject({
          code: 'STORE_CLOSED',
        })
      })
    })
  })
}
