/** Bytes or values that are not a well-formed chunk map (or signed chunk map). */
export class InvalidChunkMapError extends Error {
  override name = 'InvalidChunkMapError'
  readonly code = 'CHUNK_MAP_INVALID'
}

/** Bytes or values that are not a well-formed chunk attestation. */
export class InvalidChunkAttestationError extends Error {
  override name = 'InvalidChunkAttestationError'
  readonly code = 'CHUNK_ATTESTATION_INVALID'
}

/** A chunk index outside the blob. */
export class InvalidChunkIndexError extends Error {
  override name = 'InvalidChunkIndexError'
  readonly code = 'CHUNK_INDEX_INVALID'
}

/** A chunk map signed by a peer that is not a trusted seeder. */
export class UntrustedChunkMapError extends Error {
  override name = 'UntrustedChunkMapError'
  readonly code = 'CHUNK_MAP_UNTRUSTED'
  readonly signer: string
  constructor(signer: string) {
    super(`chunk map signed by untrusted peer ${signer.slice(0, 128)}`)
    this.signer = signer
  }
}

/** A chunk attestation signed by a peer that is not a trusted seeder. */
export class UntrustedChunkAttestationError extends Error {
  override name = 'UntrustedChunkAttestationError'
  readonly code = 'CHUNK_ATTESTATION_UNTRUSTED'
  readonly signer: string
  constructor(signer: string) {
    super(`chunk attestation signed by untrusted peer ${signer.slice(0, 128)}`)
    this.signer = signer
  }
}

/** The signature does not verify with the signer's key (tampered, replayed from another statement, or forged). */
export class InvalidSignatureError extends Error {
  override name = 'InvalidSignatureError'
  readonly code = 'SIGNATURE_INVALID'
}

/** A valid attestation, but for another blob, index or geometry than the one asked for. */
export class ChunkAttestationMismatchError extends Error {
  override name = 'ChunkAttestationMismatchError'
  readonly code = 'CHUNK_ATTESTATION_MISMATCH'
}
