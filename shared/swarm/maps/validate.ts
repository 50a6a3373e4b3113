import { type ChunkAttestation, decodeChunkAttestation, encodeChunkAttestation } from '../../chunks/attestation.ts'
import { decodeSignedChunkMap, encodeSignedChunkMap, type SignedChunkMap } from '../../chunks/signed-map.ts'
import { type Digest, isDigest } from '../../oci/digest.ts'
import { InvalidDigestError } from '../../oci/errors.ts'

/** The type says Digest, but paths and keys are built from it: check again. */
export function assertDigest(digest: Digest): void {
  if (typeof digest !== 'string' || !isDigest(digest)) throw new InvalidDigestError(String(digest))
}

/** A private copy that round-trips the canonical encoding (which validates every field). */
export function copySignedMap(signed: SignedChunkMap): SignedChunkMap {
  return decodeSignedChunkMap(encodeSignedChunkMap(signed), { maxChunks: signed.map.chunks.length })
}

export function copyAttestation(a: ChunkAttestation): ChunkAttestation {
  return decodeChunkAttestation(encodeChunkAttestation(a))
}

export function sameGeometry(a: ChunkAttestation, b: ChunkAttestation): boolean {
  return a.size === b.size && a.chunkSize === b.chunkSize
}
