/**
 * `/shoal/manifests/1.0.0`: a manifest body by digest from a peer instead of the origin. The origin still resolves
 * every tag and answers every authorization check; only the bytes of a manifest whose digest the origin gave travel
 * peer to peer, verified against that digest before they are cached or served. One request per stream.
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Logger } from '../../log/index.ts'
import type { Digest } from '../../oci/index.ts'
import type { ManifestCache } from '../../store/index.ts'
import type { ManifestClient } from './client.ts'

export interface ManifestServerComponents {
  readonly registrar: Pick<Libp2p, 'handle' | 'unhandle'>
}

export interface ManifestServerInit {
  /** Only manifests verified against their digest when they were put (ManifestCache checks on put). */
  readonly cache: Pick<ManifestCache, 'getManifest'>
  /** Each request must be answered in full within this time or its stream is reset (default 5 s). */
  readonly requestTimeoutMs?: number
  /**
   * A seeder: on a miss for a request that names where the digest was resolved, pull the manifest by digest from
   * that origin into `cache` (verified there, once however many ask), then answer from the cache. Absent: none.
   */
  readonly fetch?: (digest: Digest, registry: string, name: string, signal: AbortSignal) => Promise<void>
  readonly log?: Pick<Logger, 'debug'>
}

export interface ManifestClientInit {
  readonly node: Pick<Libp2p, 'dialProtocol' | 'getConnections'>
  /** One peer's answer must arrive in full within this time (default 1 s). */
  readonly requestTimeoutMs?: number
}

/** A manifest a peer gave, its bytes verified against the digest asked for. */
export interface PeerManifest {
  readonly mediaType: string
  readonly bytes: Uint8Array
}

export interface ManifestFromPeersInit {
  readonly client: Pick<ManifestClient, 'get'>
  /** Seeders, asked first, in this order (they may pull a manifest they lack from the origin, once). */
  readonly seeders: () => readonly PeerId[]
  /** Connected peers; a few of them are asked after the seeders. */
  readonly peers: () => readonly PeerId[]
  /** Peers other than seeders asked per manifest (default 3). */
  readonly maxPeers?: number
  /** Per peer (default 1 s). */
  readonly peerTimeoutMs?: number
  /** Per seeder, which may first pull the manifest from the origin (default 2 s). */
  readonly seederTimeoutMs?: number
  /** For the whole search (default 2.5 s). */
  readonly deadlineMs?: number
  readonly log?: Pick<Logger, 'debug'>
}

export { ManifestClient } from './client.ts'
export {
  DEFAULT_MAX_PEERS_ASKED,
  DEFAULT_OVERALL_DEADLINE_MS,
  DEFAULT_PEER_TIMEOUT_MS,
  MANIFEST_PROTOCOL,
} from './constants.ts'
export {
  decodeManifestRequest,
  decodeManifestResponse,
  encodeManifestRequest,
  encodeManifestResponse,
  type ManifestRequest,
  type ManifestResponse,
} from './messages.ts'
export { ManifestFromPeers, type PeerManifestResult } from './peers.ts'
export { ManifestServer } from './server.ts'
export { type ManifestSharing, startManifestSharing } from './sharing.ts'
