import type { ChunkAttestation } from '../../chunks/attestation.ts'
import type { SignedChunkMap } from '../../chunks/signed-map.ts'
import type { Digest } from '../../oci/digest.ts'
import type { MapStore } from './index.ts'
import { assertDigest, copyAttestation, copySignedMap, sameGeometry } from './validate.ts'

/** For tests of other modules and for nodes without a data directory. */
export class MemoryMapStore implements MapStore {
  readonly #maps = new Map<Digest, SignedChunkMap>()
  readonly #attestations = new Map<Digest, Map<number, ChunkAttestation>>()

  async get(digest: Digest, opts: { signal?: AbortSignal } = {}): Promise<SignedChunkMap | undefined> {
    opts.signal?.throwIfAborted()
    assertDigest(digest)
    const signed = this.#maps.get(digest)
    return signed === undefined ? undefined : copySignedMap(signed)
  }

  async put(signed: SignedChunkMap, opts: { signal?: AbortSignal } = {}): Promise<void> {
    opts.signal?.throwIfAborted()
    const copy = copySignedMap(signed)
    this.#maps.set(copy.map.digest, copy)
  }

  async putAttestation(a: ChunkAttestation, opts: { signal?: AbortSignal } = {}): Promise<void> {
    opts.signal?.throwIfAborted()
    const copy = copyAttestation(a)
    let byIndex = this.#attestations.get(copy.digest)
    const any = byIndex?.values().next().value
    if (byIndex === undefined || (any !== undefined && !sameGeometry(any, copy))) {
      byIndex = new Map()
      this.#attestations.set(copy.digest, byIndex)
    }
    byIndex.set(copy.index, copy)
  }

  async attestations(digest: Digest, opts: { signal?: AbortSignal } = {}): Promise<ChunkAttestation[]> {
    opts.signal?.throwIfAborted()
    assertDigest(digest)
    const byIndex = this.#attestations.get(digest)
    if (byIndex === undefined) return []
    return [...byIndex.values()].sort((x, y) => x.index - y.index).map(copyAttestation)
  }

  async delete(digest: Digest, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    opts.signal?.throwIfAborted()
    assertDigest(digest)
    const hadMap = this.#maps.delete(digest)
    const hadAttestations = this.#attestations.delete(digest)
    return hadMap || hadAttestations
  }
}
