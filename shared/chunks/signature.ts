import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign as cryptoSign,
  verify as cryptoVerify,
} from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { Reader, Writer } from './codec.ts'
import { MAX_SIGNATURE_BYTES, MAX_SIGNER_BYTES, SIGNED_FORMAT_VERSION } from './constants.ts'
import { InvalidSignatureError } from './errors.ts'

const utf8 = new TextEncoder()

const ED25519_SIGNATURE_BYTES = 64
/** Signers whose parsed key is kept: the trusted seeders and a few more (a chunk's attestation names its signer). */
const MAX_CACHED_SIGNERS = 256

/**
 * A signer's public key ready to verify with, parsed once: every chunk of a cold blob carries an attestation by
 * the same seeder, and building the key from the peer id on each (what the libp2p key object does per call)
 * cost more than the Ed25519 check itself. Other key types keep the libp2p object.
 */
type Verifier =
  { readonly ed25519: KeyObject } | { readonly other: NonNullable<ReturnType<typeof peerIdFromString>['publicKey']> }
const verifiers = new Map<string, Verifier>()
/** The same for our own key when signing: the peer id and the native key object, once per key. */
const signers = new WeakMap<PrivateKey, { readonly id: string; readonly ed25519?: KeyObject }>()

/** The exact bytes a signature covers: the domain prefix, then the canonical body. */
export function signedMessage(domain: string, body: Uint8Array): Uint8Array {
  const prefix = utf8.encode(domain)
  const out = new Uint8Array(prefix.byteLength + body.byteLength)
  out.set(prefix)
  out.set(body, prefix.byteLength)
  return out
}

export async function sign(
  domain: string,
  body: Uint8Array,
  privateKey: PrivateKey,
  options: { signal?: AbortSignal } = {},
): Promise<{ signer: string; signature: Uint8Array }> {
  const signer = signerOf(privateKey)
  const message = signedMessage(domain, body)
  if (signer.ed25519 !== undefined) {
    options.signal?.throwIfAborted()
    return { signer: signer.id, signature: new Uint8Array(cryptoSign(null, message, signer.ed25519)) }
  }
  // A plain copy: key implementations may return a Buffer, whose slice() is a view, not a copy.
  const signature = new Uint8Array(await privateKey.sign(message, options))
  return { signer: signer.id, signature }
}

function signerOf(privateKey: PrivateKey): { readonly id: string; readonly ed25519?: KeyObject } {
  let cached = signers.get(privateKey)
  if (cached !== undefined) return cached
  const peer = peerIdFromPrivateKey(privateKey)
  // Only keys the peer id embeds can be checked by a verifier that knows nothing but the peer id.
  if (peer.publicKey === undefined) throw new InvalidSignatureError(`cannot sign with a ${privateKey.type} key`)
  const id = peer.toString()
  cached =
    privateKey.type === 'Ed25519'
      ? {
          id,
          ed25519: createPrivateKey({
            format: 'jwk',
            key: {
              kty: 'OKP',
              crv: 'Ed25519',
              d: Buffer.from(privateKey.raw.subarray(0, 32)).toString('base64url'),
              x: Buffer.from(privateKey.publicKey.raw).toString('base64url'),
            },
          }),
        }
      : { id }
  signers.set(privateKey, cached)
  return cached
}

/** Throws InvalidSignatureError unless `signature` is `signer`'s signature over domain + body. */
export async function verify(
  domain: string,
  body: Uint8Array,
  signer: string,
  signature: Uint8Array,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const key = verifierOf(signer)
  let ok: boolean
  try {
    if ('ed25519' in key) {
      options.signal?.throwIfAborted()
      if (signature.byteLength !== ED25519_SIGNATURE_BYTES) throw new TypeError('an Ed25519 signature is 64 bytes')
      ok = cryptoVerify(null, signedMessage(domain, body), key.ed25519, signature)
    } else {
      ok = await key.other.verify(signedMessage(domain, body), signature, options)
    }
  } catch (err) {
    options.signal?.throwIfAborted()
    throw new InvalidSignatureError('malformed signature', { cause: err })
  }
  if (!ok) throw new InvalidSignatureError(`signature by ${signer} does not verify`)
}

function verifierOf(signer: string): Verifier {
  const cached = verifiers.get(signer)
  if (cached !== undefined) return cached
  let publicKey: ReturnType<typeof peerIdFromString>['publicKey']
  try {
    publicKey = peerIdFromString(signer).publicKey
  } catch (err) {
    throw new InvalidSignatureError('signer is not a peer id', { cause: err })
  }
  if (publicKey === undefined) throw new InvalidSignatureError('signer peer id does not embed its public key')
  const verifier: Verifier =
    publicKey.type === 'Ed25519'
      ? {
          ed25519: createPublicKey({
            format: 'jwk',
            key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey.raw).toString('base64url') },
          }),
        }
      : { other: publicKey }
  if (verifiers.size >= MAX_CACHED_SIGNERS) verifiers.delete(verifiers.keys().next().value!)
  verifiers.set(signer, verifier)
  return verifier
}

/**
 * Wire envelope shared by signed maps and attestations:
 *   u8 version (1) | u8 signer length | signer (UTF-8 peer id) | u16 signature length | signature | body
 */
export function encodeEnvelope(signer: string, signature: Uint8Array, body: Uint8Array): Uint8Array {
  const id = utf8.encode(signer)
  if (id.byteLength > MAX_SIGNER_BYTES) throw new InvalidSignatureError('signer id too long')
  if (signature.byteLength > MAX_SIGNATURE_BYTES) throw new InvalidSignatureError('signature too long')
  return new Writer(1 + 1 + id.byteLength + 2 + signature.byteLength + body.byteLength)
    .u8(SIGNED_FORMAT_VERSION)
    .u8(id.byteLength)
    .raw(id)
    .u16(signature.byteLength)
    .raw(signature)
    .raw(body)
    .done()
}

export function maxEnvelopeOverheadBytes(): number {
  return 1 + 1 + MAX_SIGNER_BYTES + 2 + MAX_SIGNATURE_BYTES
}

export function decodeEnvelope(
  bytes: Uint8Array,
  fail: (message: string) => Error,
): { signer: string; signature: Uint8Array; body: Uint8Array } {
  const r = new Reader(bytes, fail)
  const version = r.u8('version')
  if (version !== SIGNED_FORMAT_VERSION) throw fail(`unknown signed format version ${version}`)
  const idLength = r.u8('signer length')
  if (idLength === 0 || idLength > MAX_SIGNER_BYTES) throw fail('bad signer length')
  const id = r.raw(idLength, 'signer')
  let signer: string
  try {
    signer = new TextDecoder('utf-8', { fatal: true }).decode(id)
  } catch {
    throw fail('signer is not UTF-8')
  }
  const sigLength = r.u16('signature length')
  if (sigLength === 0 || sigLength > MAX_SIGNATURE_BYTES) throw fail('bad signature length')
  // Copied out so the result never aliases the caller's buffer (Buffer#slice would).
  const signature = new Uint8Array(r.raw(sigLength, 'signature'))
  return { signer, signature, body: r.raw(r.remaining, 'body') }
}
