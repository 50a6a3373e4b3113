/**
 * Streaming attestations: while a cold blob streams in from the origin, the seeder signs each chunk's hash
 * the moment that chunk is complete, so agents can verify and pass on chunk i before the seeder has read the
 * rest of the blob (see DESIGN.md, "The hard parts"). The full chunk map and the blob digest close the blob.
 *
 * Canonical body (big-endian, fixed width), signed after the CHUNK_ATTESTATION_DOMAIN prefix:
 *   u8 version (1) | u8 algorithm + blob digest bytes | u64 size | u32 chunk size | u32 index | 32 B chunk SHA-256
 */
import type { PrivateKey } from '@libp2p/interface'
import type { Digest } from '../oci/digest.ts'
import { checkGeometry, chunkCount, isChunkDigest } from './chunk-map.ts'
import { encodedDigestLength, Reader, Writer } from './codec.ts'
import { CHUNK_ATTESTATION_DOMAIN, CHUNK_DIGEST_BYTES, CHUNK_MAP_FORMAT_VERSION } from './constants.ts'
import {
  ChunkAttestationMismatchError,
  InvalidChunkAttestationError,
  UntrustedChunkAttestationError,
} from './errors.ts'
import { decodeEnvelope, encodeEnvelope, maxEnvelopeOverheadBytes, sign, verify } from './signature.ts'

/** The statement "chunk `index` of blob `digest` (size, chunk size) has SHA-256 `chunk`". */
export interface ChunkStatement {
  readonly digest: Digest
  readonly size: number
  readonly chunkSize: number
  readonly index: number
  /** `sha256:<hex>` of the chunk's bytes. */
  readonly chunk: string
}

export interface ChunkAttestation extends ChunkStatement {
  readonly signer: string
  readonly signature: Uint8Array
}

function validateStatement(s: ChunkStatement): void {
  const fail = (m: string): Error => new InvalidChunkAttestationError(m)
  checkGeometry(s, fail)
  const count = chunkCount(s.size, s.chunkSize)
  if (!Number.isInteger(s.index) || s.index < 0 || s.index >= count) {
    throw fail(`chunk index ${s.index} out of range 0..${count - 1}`)
  }
  if (typeof s.chunk !== 'string' || !isChunkDigest(s.chunk)) throw fail('invalid chunk digest')
}

function encodeStatement(s: ChunkStatement): Uint8Array {
  validateStatement(s)
  return new Writer(1 + encodedDigestLength(s.digest) + 8 + 4 + 4 + CHUNK_DIGEST_BYTES)
    .u8(CHUNK_MAP_FORMAT_VERSION)
    .digest(s.digest)
    .u64(s.size)
    .u32(s.chunkSize)
    .u32(s.index)
    .raw(Buffer.from(s.chunk.slice('sha256:'.length), 'hex'))
    .done()
}

function decodeStatement(bytes: Uint8Array): ChunkStatement {
  const fail = (m: string): Error => new InvalidChunkAttestationError(m)
  const r = new Reader(bytes, fail)
  const version = r.u8('version')
  if (version !== CHUNK_MAP_FORMAT_VERSION) throw fail(`unknown attestation version ${version}`)
  const s: ChunkStatement = {
    digest: r.digest('blob digest'),
    size: r.u64('size'),
    chunkSize: r.u32('chunk size'),
    index: r.u32('index'),
    chunk: r.chunkDigest('chunk digest'),
  }
  r.end()
  validateStatement(s)
  return s
}

export async function signChunkAttestation(
  statement: ChunkStatement,
  privateKey: PrivateKey,
  options: { signal?: AbortSignal } = {},
): Promise<ChunkAttestation> {
  const { signer, signature } = await sign(CHUNK_ATTESTATION_DOMAIN, encodeStatement(statement), privateKey, options)
  const { digest, size, chunkSize, index, chunk } = statement
  return { digest, size, chunkSize, index, chunk, signer, signature }
}

/** What the verifier is asking about; any field given must match the attestation. */
export interface ExpectedChunk {
  readonly digest?: Digest
  readonly size?: number
  readonly chunkSize?: number
  readonly index?: number
}

/**
 * Throws unless the attestation is well formed, signed by a trusted signer over exactly these fields and
 * (when `expected` is given) about the blob and chunk the caller asked for: a genuine attestation for another
 * blob or index is no evidence about this one.
 */
export async function verifyChunkAttestation(
  a: ChunkAttestation,
  trustedSigners: ReadonlySet<string>,
  expected: ExpectedChunk = {},
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const body = encodeStatement(a)
  for (const key of ['digest', 'size', 'chunkSize', 'index'] as const) {
    const want = expected[key]
    if (want !== undefined && want !== a[key]) {
      throw new ChunkAttestationMismatchError(`attestation is for ${key} ${a[key]}, want ${want}`)
    }
  }
  if (!trustedSigners.has(a.signer)) throw new UntrustedChunkAttestationError(a.signer)
  await verify(CHUNK_ATTESTATION_DOMAIN, body, a.signer, a.signature, options)
}

export function encodeChunkAttestation(a: ChunkAttestation): Uint8Array {
  return encodeEnvelope(a.signer, a.signature, encodeStatement(a))
}

export const MAX_ENCODED_CHUNK_ATTESTATION_BYTES = maxEnvelopeOverheadBytes() + 1 + 65 + 8 + 4 + 4 + CHUNK_DIGEST_BYTES

export function decodeChunkAttestation(bytes: Uint8Array): ChunkAttestation {
  const fail = (m: string): Error => new InvalidChunkAttestationError(m)
  if (bytes.byteLength > MAX_ENCODED_CHUNK_ATTESTATION_BYTES) throw fail(`attestation of ${bytes.byteLength} bytes`)
  const { signer, signature, body } = decodeEnvelope(bytes, fail)
  return { ...decodeStatement(body), signer, signature }
}
