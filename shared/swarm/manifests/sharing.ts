import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from '../../log/index.ts'
import type { ManifestCache } from '../../store/index.ts'
import { ManifestClient } from './client.ts'
import { ManifestFromPeers } from './peers.ts'
import { ManifestServer } from './server.ts'

export interface ManifestSharing {
  readonly server: ManifestServer
  readonly peers: ManifestFromPeers
  stop(): Promise<void>
}

/**
 * An agent's half of manifest sharing, started: its cache served to peers, and the search (seeders by id, in the
 * order given, then connected peers) a manifest miss makes before the origin GET.
 */
export async function startManifestSharing(opts: {
  readonly node: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'getConnections' | 'getPeers'>
  readonly cache: Pick<ManifestCache, 'getManifest'>
  /** Peer ids of the trusted seeders. */
  readonly seeders: readonly string[]
  readonly log?: Pick<Logger, 'debug'>
}): Promise<ManifestSharing> {
  const { node, log } = opts
  const server = new ManifestServer({ registrar: node }, { cache: opts.cache, ...(log === undefined ? {} : { log }) })
  await server.start()
  const seeders = opts.seeders.map((id) => peerIdFromString(id))
  const peers = new ManifestFromPeers({
    client: new ManifestClient({ node }),
    seeders: () => seeders,
    peers: () => node.getPeers(),
    ...(log === undefined ? {} : { log }),
  })
  return { server, peers, stop: () => server.stop() }
}
