import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { CHUNK_ATTESTATION_DOMAIN } from '../../../shared/chunks/constants.ts'
import {
  type ChunkMap,
  decodeSignedChunkMap,
  encodeChunkMap,
  encodeSignedChunkMap,
  InvalidChunkMapError,
  InvalidSignatureError,
  maxEncodedSignedChunkMapBytes,
  type SignedChunkMap,
  signChunkMap,
  UntrustedChunkMapError,
  verifySignedChunkMap,
} from '../../../shared/chunks/index.ts'
import { verify } from '../../../shared/chunks/signature.ts'
import type { Digest } from '../../../shared/oci/digest.ts'

const MIB = 1024 * 1024
const map: ChunkMap = {
  digest: `sha256:${'a'.repeat(64)}` as Digest,
  size: 10 * MIB + 5,
  chunkSize: 4 * MIB,
  chunks: ['1', '2', '3'].map((c) => `sha256:${c.repeat(64)}`),
}

let seeder: PrivateKey
let other: PrivateKey
let trusted: Set<string>
let signed: SignedChunkMap

beforeAll(async () => {
  seeder = await generateKeyPair('Ed25519')
  other = await generateKeyPair('Ed25519')
  trusted = new Set([peerIdFromPrivateKey(seeder).toString(), peerIdFromPrivateKey(other).toString()])
  signed = await signChunkMap(map, seeder)
})

describe('signChunkMap / verifySignedChunkMap', () => {
  it("signs with the node's identity and verifies for a trusted signer", async () => {
    expect(signed.signer).toBe(peerIdFromPrivateKey(seeder).toString())
    expect(signed.signature.byteLength).toBe(64)
    expect(await verifySignedChunkMap(signed, trusted)).toEqual(map)
  })

  it('rejects a map from a signer that is not trusted, however valid its signature', async () => {
    const stranger = await signChunkMap(map, await generateKeyPair('Ed25519'))
    await expect(verifySignedChunkMap(stranger, trusted)).rejects.toBeInstanceOf(UntrustedChunkMapError)
    await expect(verifySignedChunkMap(signed, new Set())).rejects.toMatchObject({ code: 'CHUNK_MAP_UNTRUSTED' })
  })

  it.each<[string, Partial<ChunkMap>]>([
    ['digest', { digest: `sha256:${'b'.repeat(64)}` as Digest }],
    ['size', { size: 10 * MIB + 4 }],
    ['chunk size', { chunkSize: 5 * MIB }],
    ['a chunk digest', { chunks: ['1', '2', '4'].map((c) => `sha256:${c.repeat(64)}`) }],
    ['chunk order', { chunks: ['2', '1', '3'].map((c) => `sha256:${c.repeat(64)}`) }],
  ])('rejects a map whose %s was changed after signing', async (_name, change) => {
    const tampered = { ...signed, map: { ...map, ...change } }
    await expect(verifySignedChunkMap(tampered, trusted)).rejects.toBeInstanceOf(InvalidSignatureError)
  })

  it('rejects a changed signature and a signature claimed by another trusted signer', async () => {
    const flipped = signed.signature.slice()
    flipped[10]! ^= 1
    await expect(verifySignedChunkMap({ ...signed, signature: flipped }, trusted)).rejects.toBeInstanceOf(
      InvalidSignatureError,
    )
    const claimed = { ...signed, signer: peerIdFromPrivateKey(other).toString() }
    await expect(verifySignedChunkMap(claimed, trusted)).rejects.toBeInstanceOf(InvalidSignatureError)
    await expect(verifySignedChunkMap({ ...signed, signature: new Uint8Array(3) }, trusted)).rejects.toBeInstanceOf(
      InvalidSignatureError,
    )
  })

  it('rejects a trusted name that is not a peer id, and a structurally invalid map', async () => {
    await expect(verifySignedChunkMap({ ...signed, signer: 'seeder-0' }, new Set(['seeder-0']))).rejects.toBeInstanceOf(
      InvalidSignatureError,
    )
    const broken = { ...signed, map: { ...map, chunks: map.chunks.slice(1) } }
    await expect(verifySignedChunkMap(broken, trusted)).rejects.toBeInstanceOf(InvalidChunkMapError)
  })

  it('is domain-separated: a chunk-map signature does not verify as a chunk attestation over the same bytes', async () => {
    await expect(
      verify(CHUNK_ATTESTATION_DOMAIN, encodeChunkMap(map), signed.signer, signed.signature),
    ).rejects.toBeInstanceOf(InvalidSignatureError)
  })
})

describe('encodeSignedChunkMap / decodeSignedChunkMap', () => {
  it('round-trips the wire form', async () => {
    const back = decodeSignedChunkMap(encodeSignedChunkMap(signed))
    expect(back).toEqual(signed)
    expect(await verifySignedChunkMap(back, trusted)).toEqual(map)
  })

  it('fails to decode or to verify after any single-byte change on the wire', async () => {
    const wire = encodeSignedChunkMap(signed)
    for (let i = 0; i < wire.byteLength; i++) {
      const bad = wire.slice()
      bad[i]! ^= 0x01
      const outcome = await Promise.resolve()
        .then(() => verifySignedChunkMap(decodeSignedChunkMap(bad), trusted))
        .then(
          () => 'accepted',
          (err: Error) => err.name,
        )
      expect(['InvalidChunkMapError', 'InvalidSignatureError', 'UntrustedChunkMapError'], `byte ${i}`).toContain(
        outcome,
      )
    }
  })

  it('enforces size limits before parsing', () => {
    const wire = encodeSignedChunkMap(signed)
    expect(() => decodeSignedChunkMap(wire, { maxChunks: 2 })).toThrow(InvalidChunkMapError)
    const huge = new Uint8Array(maxEncodedSignedChunkMapBytes({ maxChunks: 3 }) + 1)
    expect(() => decodeSignedChunkMap(huge, { maxChunks: 3 })).toThrow(/bytes/)
    expect(() => decodeSignedChunkMap(wire.subarray(0, 40))).toThrow(InvalidChunkMapError)
    expect(() => decodeSignedChunkMap(new Uint8Array(0))).toThrow(InvalidChunkMapError)
  })
})
