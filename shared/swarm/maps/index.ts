/**
 * Where a node keeps chunk maps and chunk attestations it can show to peers: the signed map of every blob it
 * serves, and, while a cold blob is still streaming in, the seeder's per-chunk attestations, so that after a
 * restart it can still prove the chunks it holds. One interface, a file and a memory implementation, and one
 * conformance suite (test/shared/swarm/maps/map-store.conformance.ts) both pass.
 *
 * Values are stored as given: verifying signatures is the caller's job before put (the store is local and
 * trusted); they are re-validated structurally (encode/decode) so a malformed one is refused at put.
 */
import type { ChunkAttestation } from '../../chunks/attestation.ts'
import type { SignedChunkMap } from '../../chunks/signed-map.ts'
import type { Digest } from '../../oci/digest.ts'

export interface MapStore {
  get(digest: Digest, opts?: { signal?: AbortSignal }): Promise<SignedChunkMap | undefined>
  /** Stores (or replaces) the map of `signed.map.digest`. Attestations of the blob are kept. */
  put(signed: SignedChunkMap, opts?: { signal?: AbortSignal }): Promise<void>
  /**
   * Adds an attestation of one chunk; a later one for the same index replaces it. One with another geometry
   * (size or chunk size) than those stored for the blob replaces them all: the blob is being cut differently.
   */
  putAttestation(a: ChunkAttestation, opts?: { signal?: AbortSignal }): Promise<void>
  /** The blob's attestations, one per chunk index, in index order ([] when none). */
  attestations(digest: Digest, opts?: { signal?: AbortSignal }): Promise<ChunkAttestation[]>
  /** Removes the map and the attestations; false when there was neither. */
  delete(digest: Digest, opts?: { signal?: AbortSignal }): Promise<boolean>
}

export { FsMapStore, type FsMapStoreOptions } from './fs-map-store.ts'
export { MemoryMapStore } from './memory-map-store.ts'
