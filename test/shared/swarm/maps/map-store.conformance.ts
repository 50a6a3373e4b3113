/**
 * The contract every MapStore implementation passes. Call mapStoreConformance from an implementation's test file
 * with a factory that opens a fresh, empty store.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { beforeAll, describe, expect, it } from 'vitest'
import { type ChunkAttestation, signChunkAttestation } from '../../../../shared/chunks/attestation.ts'
import { InvalidChunkAttestationError, InvalidChunkMapError } from '../../../../shared/chunks/errors.ts'
import { type SignedChunkMap, signChunkMap } from '../../../../shared/chunks/signed-map.ts'
import { type Digest, digestOf } from '../../../../shared/oci/digest.ts'
import { InvalidDigestError } from '../../../../shared/oci/errors.ts'
import type { MapStore } from '../../../../shared/swarm/maps/index.ts'

export type MapStoreFactory = () => Promise<MapStore>

const KIB = 1024
const CHUNK = 64 * KIB
const blobA = digestOf(new TextEncoder().encode('blob a'))
const blobB = digestOf(new TextEncoder().encode('blob b'))
const chunkDigest = (i: number): string => digestOf(Uint8Array.of(i >> 8, i & 0xff))

export interface Fixtures {
  key: PrivateKey
  otherKey: PrivateKey
  mapA: SignedChunkMap
  mapA2: SignedChunkMap
  mapB: SignedChunkMap
  attest(digest: Digest, index: number, opts?: { size?: number; key?: PrivateKey }): Promise<ChunkAttestation>
}

export async function fixtures(): Promise<Fixtures> {
  const key = await generateKeyPair('Ed25519')
  const otherKey = await generateKeyPair('Ed25519')
  const mapOf = (digest: Digest, chunks: number): Parameters<typeof signChunkMap>[0] => ({
    digest,
    size: chunks * CHUNK - 10,
    chunkSize: CHUNK,
    chunks: Array.from({ length: chunks }, (_, i) => chunkDigest(i)),
  })
  return {
    key,
    otherKey,
    mapA: await signChunkMap(mapOf(blobA, 4), key),
    mapA2: await signChunkMap(mapOf(blobA, 4), otherKey),
    mapB: await signChunkMap(mapOf(blobB, 1), key),
    attest: (digest, index, opts = {}) =>
      signChunkAttestation(
        { digest, size: opts.size ?? 4 * CHUNK - 10, chunkSize: CHUNK, index, chunk: chunkDigest(index) },
        opts.key ?? key,
      ),
  }
}

export function mapStoreConformance(name: string, factory: MapStoreFactory): void {
  describe(`${name}: MapStore conformance`, () => {
    let f: Fixtures
    beforeAll(async () => {
      f = await fixtures()
    })

    describe('maps', () => {
      it('has nothing for an unknown digest', async () => {
        const store = await factory()
        expect(await store.get(blobA)).toBeUndefined()
      })

      it('returns a stored map equal to the one put, signature included', async () => {
        const store = await factory()
        await store.put(f.mapA)
        await store.put(f.mapB)
        expect(await store.get(blobA)).toEqual(f.mapA)
        expect(await store.get(blobB)).toEqual(f.mapB)
      })

      it('replaces a map put again for the same blob', async () => {
        const store = await factory()
        await store.put(f.mapA)
        await store.put(f.mapA2)
        expect((await store.get(blobA))?.signer).toBe(f.mapA2.signer)
      })

      it("keeps its own copy: changing the caller's object afterwards changes nothing", async () => {
        const store = await factory()
        const signature = f.mapA.signature.slice()
        const mine: SignedChunkMap = { ...f.mapA, signature }
        await store.put(mine)
        signature.fill(0)
        expect((await store.get(blobA))?.signature).toEqual(f.mapA.signature)
      })

      it('refuses a malformed map', async () => {
        const store = await factory()
        const bad = { ...f.mapA, map: { ...f.mapA.map, chunks: f.mapA.map.chunks.slice(1) } }
        await expect(store.put(bad)).rejects.toBeInstanceOf(InvalidChunkMapError)
        expect(await store.get(blobA)).toBeUndefined()
      })

      it('refuses digests that are not digests (they name files)', async () => {
        const store = await factory()
        for (const d of ['sha256:../../../etc/passwd', 'sha256:ABC', '', 'md5:00'] as Digest[]) {
          await expect(store.get(d)).rejects.toBeInstanceOf(InvalidDigestError)
          await expect(store.attestations(d)).rejects.toBeInstanceOf(InvalidDigestError)
          await expect(store.delete(d)).rejects.toBeInstanceOf(InvalidDigestError)
        }
      })

      it('honours an aborted signal', async () => {
        const store = await factory()
        const signal = AbortSignal.abort(new Error('stop'))
        await expect(store.put(f.mapA, { signal })).rejects.toThrow('stop')
        await expect(store.get(blobA, { signal })).rejects.toThrow('stop')
      })
    })

    describe('attestations', () => {
      it('has none for an unknown blob', async () => {
        const store = await factory()
        expect(await store.attestations(blobA)).toEqual([])
      })

      it('returns one per index in index order, the last put winning', async () => {
        const store = await factory()
        const a2 = await f.attest(blobA, 2)
        const a0 = await f.attest(blobA, 0)
        const a2other = await f.attest(blobA, 2, { key: f.otherKey })
        await store.putAttestation(a2)
        await store.putAttestation(a0)
        await store.putAttestation(a2other)
        await store.putAttestation(await f.attest(blobB, 0, { size: CHUNK }))
        expect(await store.attestations(blobA)).toEqual([a0, a2other])
        expect((await store.attestations(blobB)).map((a) => a.index)).toEqual([0])
      })

      it('drops the old ones when the blob is cut with another geometry', async () => {
        const store = await factory()
        await store.putAttestation(await f.attest(blobA, 0))
        await store.putAttestation(await f.attest(blobA, 1))
        const resized = await f.attest(blobA, 3, { size: 5 * CHUNK })
        await store.putAttestation(resized)
        expect(await store.attestations(blobA)).toEqual([resized])
        const next = await f.attest(blobA, 4, { size: 5 * CHUNK })
        await store.putAttestation(next)
        expect(await store.attestations(blobA)).toEqual([resized, next])
      })

      it('refuses a malformed attestation', async () => {
        const store = await factory()
        const bad = { ...(await f.attest(blobA, 0)), index: 99 }
        await expect(store.putAttestation(bad)).rejects.toBeInstanceOf(InvalidChunkAttestationError)
        expect(await store.attestations(blobA)).toEqual([])
      })

      it('keeps every attestation put concurrently', async () => {
        const store = await factory()
        const size = 64 * CHUNK
        const all = await Promise.all(Array.from({ length: 64 }, (_, i) => f.attest(blobA, i, { size })))
        await Promise.all(all.map((a) => store.putAttestation(a)))
        expect(await store.attestations(blobA)).toEqual(all)
      })

      it('keeps attestations when the map arrives', async () => {
        const store = await factory()
        const a = await f.attest(blobA, 1)
        await store.putAttestation(a)
        await store.put(f.mapA)
        expect(await store.attestations(blobA)).toEqual([a])
      })
    })

    describe('delete', () => {
      it('removes the map and the attestations, and says whether there was anything', async () => {
        const store = await factory()
        expect(await store.delete(blobA)).toBe(false)
        await store.put(f.mapA)
        await store.putAttestation(await f.attest(blobA, 0))
        await store.put(f.mapB)
        expect(await store.delete(blobA)).toBe(true)
        expect(await store.get(blobA)).toBeUndefined()
        expect(await store.attestations(blobA)).toEqual([])
        expect(await store.get(blobB)).toEqual(f.mapB)
        expect(await store.delete(blobA)).toBe(false)
      })

      it('removes attestations alone, and the blob can be filled again afterwards', async () => {
        const store = await factory()
        await store.putAttestation(await f.attest(blobA, 0))
        expect(await store.delete(blobA)).toBe(true)
        const a1 = await f.attest(blobA, 1)
        await store.putAttestation(a1)
        expect(await store.attestations(blobA)).toEqual([a1])
      })
    })
  })
}
