import { type PeerId, type PrivateKey, UnexpectedPeerError } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LRUCache } from 'lru-cache'
import { generateCertificate, verifyPeerCertificate } from '@libp2p/tls/utils'

/** A node's TLS certificate and key for the bulk path (PEM), bound to its libp2p identity. */
export interface BulkCredentials {
  readonly cert: string
  readonly key: string
  readonly peerId: PeerId
}

/**
 * The libp2p TLS handshake certificate (libp2p TLS spec): a fresh ECDSA key, self-signed, carrying the node's
 * identity key and that key's signature over the certificate key. Anyone can check it against a peer id with no
 * CA; the same certificate serves as the server's and, for mutual TLS, as the client's.
 */
export async function createBulkCredentials(
  privateKey: PrivateKey,
  opts: { signal?: AbortSignal } = {},
): Promise<BulkCredentials> {
  const { cert, key } = await generateCertificate(privateKey, opts)
  return { cert, key, peerId: peerIdFromPrivateKey(privateKey) }
}

/**
 * Certificates already verified, by their DER bytes: a peer presents the same certificate on every bulk connection
 * (up to a pool's worth to each peer, again after each idle close), and checking one parses its X.509 in JavaScript
 * and verifies two signatures. The handshake itself proves the presenter holds the certificate's key, whatever this
 * cache says; a certificate's validity period is checked again once its entry is older than the TTL.
 */
const VERIFIED = new LRUCache<string, PeerId>({ max: 1024, ttl: 10 * 60_000 })

/** The peer id a DER certificate proves, if it is a valid libp2p certificate (and `expected`'s, when given). */
export async function certificatePeer(raw: Uint8Array, expected?: PeerId): Promise<PeerId> {
  const key = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')
  let peer = VERIFIED.get(key)
  if (peer === undefined) {
    peer = await verifyPeerCertificate(raw)
    VERIFIED.set(key, peer)
  }
  if (expected !== undefined && !expected.equals(peer)) throw new UnexpectedPeerError()
  return peer
}

/** Forgets every verified certificate (tests). */
export function forgetVerifiedCertificates(): void {
  VERIFIED.clear()
}
