import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { InvalidSignatureError } from '../../../shared/chunks/index.ts'
import { sign, signedMessage, verify } from '../../../shared/chunks/signature.ts'

const DOMAIN = 'shoal-test-v1\n'
const body = new TextEncoder().encode('a statement')

describe('sign / verify with parsed keys kept per signer', () => {
  it('signs exactly what the libp2p key signs (Ed25519 is deterministic): older nodes verify it', async () => {
    const key = await generateKeyPair('Ed25519')
    const ours = await sign(DOMAIN, body, key)
    const theirs = new Uint8Array(await key.sign(signedMessage(DOMAIN, body)))
    expect(ours.signer).toBe(peerIdFromPrivateKey(key).toString())
    expect(ours.signature).toEqual(theirs)
    // And again from the cached key object.
    expect((await sign(DOMAIN, body, key)).signature).toEqual(theirs)
    expect(await peerIdFromPrivateKey(key).publicKey.verify(signedMessage(DOMAIN, body), ours.signature)).toBe(true)
  })

  it('accepts a signature made by the libp2p key, and keeps refusing a forged one after the key is cached', async () => {
    const key = await generateKeyPair('Ed25519')
    const signer = peerIdFromPrivateKey(key).toString()
    const good = new Uint8Array(await key.sign(signedMessage(DOMAIN, body)))
    await verify(DOMAIN, body, signer, good)
    await verify(DOMAIN, body, signer, good)
    const flipped = good.slice()
    flipped[5]! ^= 1
    await expect(verify(DOMAIN, body, signer, flipped)).rejects.toThrow(/does not verify/)
    await expect(verify('other-domain\n', body, signer, good)).rejects.toBeInstanceOf(InvalidSignatureError)
    await expect(verify(DOMAIN, body, signer, good.subarray(0, 63))).rejects.toThrow(/malformed signature/)
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    await expect(verify(DOMAIN, body, other, good)).rejects.toThrow(/does not verify/)
  })

  it('still signs and verifies with a key type it does not parse itself (secp256k1)', async () => {
    const key = await generateKeyPair('secp256k1')
    const { signer, signature } = await sign(DOMAIN, body, key)
    await verify(DOMAIN, body, signer, signature)
    const flipped = signature.slice()
    flipped[10]! ^= 1
    await expect(verify(DOMAIN, body, signer, flipped)).rejects.toBeInstanceOf(InvalidSignatureError)
  })
})
