import { X509Certificate } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import {
  certificatePeer,
  createBulkCredentials,
  forgetVerifiedCertificates,
} from '../../../../shared/swarm/bulk/credentials.ts'

afterEach(() => forgetVerifiedCertificates())

async function credentials() {
  const key = await generateKeyPair('Ed25519')
  const c = await createBulkCredentials(key)
  return { ...c, raw: new Uint8Array(new X509Certificate(c.cert).raw) }
}

describe('certificatePeer', () => {
  it('proves the peer id of a libp2p certificate, the first time and every time after', async () => {
    const a = await credentials()
    expect((await certificatePeer(a.raw)).equals(a.peerId)).toBe(true)
    expect((await certificatePeer(a.raw, a.peerId)).equals(a.peerId)).toBe(true)
    expect((await certificatePeer(a.raw.slice())).equals(a.peerId)).toBe(true)
  })

  it('refuses a certificate of another peer than the expected one, verified before or not', async () => {
    const [a, b] = await Promise.all([credentials(), credentials()])
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    await expect(certificatePeer(a.raw, other)).rejects.toThrow()
    await certificatePeer(b.raw)
    await expect(certificatePeer(b.raw, other)).rejects.toThrow()
    await expect(certificatePeer(b.raw, a.peerId)).rejects.toThrow()
  })

  it('refuses changed bytes of a certificate it verified before, and garbage', async () => {
    const a = await credentials()
    await certificatePeer(a.raw)
    const tampered = a.raw.slice()
    tampered[tampered.length - 5]! ^= 0xff // inside the signature
    await expect(certificatePeer(tampered)).rejects.toThrow()
    await expect(certificatePeer(new Uint8Array([1, 2, 3]))).rejects.toThrow()
    // Still refused the second time: a failure is not remembered as a success.
    await expect(certificatePeer(tampered)).rejects.toThrow()
  })
})
