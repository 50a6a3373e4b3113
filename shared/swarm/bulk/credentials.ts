import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
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

/** The peer id a DER certificate proves, if it is a valid libp2p certificate (and `expected`'s, when given). */
export async function certificatePeer(raw: Uint8Array, expected?: PeerId): Promise<PeerId> {
  return await verifyPeerCertificate(raw, expected)
}
