import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { CHUNK_MAP_DOMAIN } from '../../../shared/chunks/constants.ts'
import {
  type ChunkAttestation,
  ChunkAttestationMismatchError,
  type ChunkStatement,
  decodeChunkAttestation,
  encodeChunkAttestation,
  InvalidChunkAttestationError,
  InvalidSignatureError,
  MAX_ENCODED_CHUNK_ATTESTATION_BYTES,
  signChunkAttestation,
  signChunkMap,
  UntrustedChunkAttestationError,
  verifyChunkAttestation,
} from '../../../shared/chunks/index.ts'
import { verify } from '../../../shared/chunks/signature.ts'
import type { Digest } from '../../../shared/oci/digest.ts'

const MIB = 1024 * 1024
const blobA = `sha256:${'a'.repeat(64)}` as Digest
const blobB = `sha256:${'b'.repeat(64)}` as Digest
const statement: ChunkStatement = {
  digest: blobA,
  size: 10 * MIB + 5,
  chunkSize: 4 * MIB,
  index: 1,
  chunk: `sha256:${'c'.repeat(64)}`,
}

let seeder: PrivateKey
let trusted: Set<string>
let att: ChunkAttestation

beforeAll(async () => {
  seeder = await generateKeyPair('Ed25519')
  trusted = new Set([peerIdFromPrivateKey(seeder).toString()])
  att = await signChunkAttestation(statement, seeder)
})

describe('chunk attestations', () => {
  it('verify for a trusted signer and the chunk asked for', async () => {
    expect(att).toMatchObject({ ...statement, signer: peerIdFromPrivateKey(seeder).toString() })
    await verifyChunkAttestation(att, trusted)
    await verifyChunkAttestation(att, trusted, { digest: blobA, index: 1, size: statement.size, chunkSize: 4 * MIB })
  })

  it('are rejected when they answer another question than the one asked', async () => {
    await expect(verifyChunkAttestation(att, trusted, { digest: blobB })).rejects.toBeInstanceOf(
      ChunkAttestationMismatchError,
    )
    await expect(verifyChunkAttestation(att, trusted, { index: 2 })).rejects.toMatchObject({
      code: 'CHUNK_ATTESTATION_MISMATCH',
    })
  })

  it.each<[string, Partial<ChunkAttestation>]>([
    ['another blob', { digest: blobB }],
    ['another index', { index: 2 }],
    ['another chunk hash', { chunk: `sha256:${'d'.repeat(64)}` }],
    ['another size', { size: 10 * MIB + 6 }],
    ['another chunk size', { chunkSize: 5 * MIB }],
  ])('do not carry their signature over to %s', async (_name, change) => {
    await expect(verifyChunkAttestation({ ...att, ...change }, trusted)).rejects.toBeInstanceOf(InvalidSignatureError)
  })

  it('from an untrusted signer are rejected', async () => {
    const stranger = await signChunkAttestation(statement, await generateKeyPair('Ed25519'))
    await expect(verifyChunkAttestation(stranger, trusted)).rejects.toBeInstanceOf(UntrustedChunkAttestationError)
  })

  it('cannot be made for a chunk outside the blob or with a bad chunk digest', async () => {
    await expect(signChunkAttestation({ ...statement, index: 3 }, seeder)).rejects.toBeInstanceOf(
      InvalidChunkAttestationError,
    )
    await expect(signChunkAttestation({ ...statement, chunk: 'sha256:zz' }, seeder)).rejects.toBeInstanceOf(
      InvalidChunkAttestationError,
    )
  })

  it('and chunk maps never verify as each other (domain separation)', async () => {
    const map = {
      digest: blobA,
      size: 100,
      chunkSize: 64 * 1024,
      chunks: [`sha256:${'c'.repeat(64)}`],
    }
    const signedMap = await signChunkMap(map, seeder)
    const asAttestation = { digest: blobA, size: 100, chunkSize: 64 * 1024, index: 0, chunk: map.chunks[0]! }
    await expect(
      verifyChunkAttestation({ ...asAttestation, signer: signedMap.signer, signature: signedMap.signature }, trusted),
    ).rejects.toBeInstanceOf(InvalidSignatureError)
    // The same body bytes signed under one prefix never verify under the other.
    const attestation = await signChunkAttestation(asAttestation, seeder)
    const body = encodeChunkAttestation(attestation).subarray(-(1 + 33 + 8 + 4 + 4 + 32))
    await expect(verify(CHUNK_MAP_DOMAIN, body, attestation.signer, attestation.signature)).rejects.toBeInstanceOf(
      InvalidSignatureError,
    )
  })

  it('round-trip on the wire, and fail after any single-byte change', async () => {
    const wire = encodeChunkAttestation(att)
    expect(wire.byteLength).toBeLessThanOrEqual(MAX_ENCODED_CHUNK_ATTESTATION_BYTES)
    const back = decodeChunkAttestation(wire)
    expect(back).toEqual(att)
    await verifyChunkAttestation(back, trusted)
    for (let i = 0; i < wire.byteLength; i++) {
      const bad = wire.slice()
      bad[i]! ^= 0x80
      const outcome = await Promise.resolve()
        .then(() => verifyChunkAttestation(decodeChunkAttestation(bad), trusted))
        .then(
          () => 'accepted',
          (err: Error) => err.name,
        )
      expect(
        ['InvalidChunkAttestationError', 'InvalidSignatureError', 'UntrustedChunkAttestationError'],
        `byte ${i}`,
      ).toContain(outcome)
    }
  })

  it('refuse oversized, truncated or padded wire input', () => {
    const wire = encodeChunkAttestation(att)
    expect(() => decodeChunkAttestation(new Uint8Array(MAX_ENCODED_CHUNK_ATTESTATION_BYTES + 1))).toThrow(/bytes/)
    expect(() => decodeChunkAttestation(wire.subarray(0, wire.byteLength - 1))).toThrow(InvalidChunkAttestationError)
    const padded = new Uint8Array(wire.byteLength + 1)
    padded.set(wire)
    expect(() => decodeChunkAttestation(padded)).toThrow(InvalidChunkAttestationError)
  })
})
