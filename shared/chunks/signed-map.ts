import type { PrivateKey } from '@libp2p/interface'
import {
  type ChunkMap,
  type DecodeLimits,
  decodeChunkMap,
  encodeChunkMap,
  maxEncodedChunkMapBytes,
} from './chunk-map.ts'
import { CHUNK_MAP_DOMAIN } from './constants.ts'
import { InvalidChunkMapError, UntrustedChunkMapError } from './errors.ts'
import { decodeEnvelope, encodeEnvelope, maxEnvelopeOverheadBytes, sign, verify } from './signature.ts'

export interface SignedChunkMap {
  readonly map: ChunkMap
  /** Peer id (string form) of the signer: a seeder's libp2p identity. */
  readonly signer: string
  readonly signature: Uint8Array
}

/** Signs the map's canonical encoding, prefixed with CHUNK_MAP_DOMAIN, with the node's libp2p identity key. */
export async function signChunkMap(
  map: ChunkMap,
  privateKey: PrivateKey,
  options: { signal?: AbortSignal } = {},
): Promise<SignedChunkMap> {
  const { signer, signature } = await sign(CHUNK_MAP_DOMAIN, encodeChunkMap(map), privateKey, options)
  return { map, signer, signature }
}

/**
 * Returns the map once it is well formed, signed by a trusted signer, and the signature covers exactly these
 * fields. Throws InvalidChunkMapError, UntrustedChunkMapError or InvalidSignatureError.
 */
export async function verifySignedChunkMap(
  signed: SignedChunkMap,
  trustedSigners: ReadonlySet<string>,
  options: { signal?: AbortSignal } = {},
): Promise<ChunkMap> {
  // Re-encoding validates the in-memory map and yields the exact bytes that were signed.
  const body = encodeChunkMap(signed.map)
  if (!trustedSigners.has(signed.signer)) throw new UntrustedChunkMapError(signed.signer)
  await verify(CHUNK_MAP_DOMAIN, body, signed.signer, signed.signature, options)
  return signed.map
}

export function encodeSignedChunkMap(signed: SignedChunkMap): Uint8Array {
  return encodeEnvelope(signed.signer, signed.signature, encodeChunkMap(signed.map))
}

/** Largest wire form `decodeSignedChunkMap` accepts under `limits`. */
export function maxEncodedSignedChunkMapBytes(limits: DecodeLimits = {}): number {
  return maxEnvelopeOverheadBytes() + maxEncodedChunkMapBytes(limits)
}

/** Parses the wire form (size-limited before parsing); the result still has to pass verifySignedChunkMap. */
export function decodeSignedChunkMap(bytes: Uint8Array, limits: DecodeLimits = {}): SignedChunkMap {
  const fail = (m: string): Error => new InvalidChunkMapError(m)
  if (bytes.byteLength > maxEncodedSignedChunkMapBytes(limits)) {
    throw fail(`signed chunk map of ${bytes.byteLength} bytes`)
  }
  const { signer, signature, body } = decodeEnvelope(bytes, fail)
  return { map: decodeChunkMap(body, limits), signer, signature }
}
