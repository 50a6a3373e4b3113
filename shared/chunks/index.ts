export {
  type ChunkAttestation,
  type ChunkStatement,
  decodeChunkAttestation,
  type ExpectedChunk,
  encodeChunkAttestation,
  MAX_ENCODED_CHUNK_ATTESTATION_BYTES,
  signChunkAttestation,
  verifyChunkAttestation,
} from './attestation.ts'
export { Bitfield, InvalidBitfieldError } from './bitfield.ts'
export {
  type ChunkGeometry,
  type ChunkMap,
  chunkCount,
  chunkRange,
  type DecodeLimits,
  decodeChunkMap,
  encodeChunkMap,
  isChunkDigest,
  isValidChunkSize,
  maxEncodedChunkMapBytes,
  validateChunkMap,
} from './chunk-map.ts'
export { ChunkMapBuilder, type CompletedChunk, chunkDigestOf, computeChunkMap, verifyChunk } from './compute.ts'
export {
  DEFAULT_CHUNK_SIZE_BYTES,
  DEFAULT_MAX_CHUNKS,
  MAX_CHUNK_SIZE_BYTES,
  MIN_CHUNK_SIZE_BYTES,
} from './constants.ts'
export {
  ChunkAttestationMismatchError,
  InvalidChunkAttestationError,
  InvalidChunkIndexError,
  InvalidChunkMapError,
  InvalidSignatureError,
  UntrustedChunkAttestationError,
  UntrustedChunkMapError,
} from './errors.ts'
export {
  decodeSignedChunkMap,
  encodeSignedChunkMap,
  maxEncodedSignedChunkMapBytes,
  type SignedChunkMap,
  signChunkMap,
  verifySignedChunkMap,
} from './signed-map.ts'
