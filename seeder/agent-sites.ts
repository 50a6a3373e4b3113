import type { PeerId } from '@libp2p/interface'
import type { P2PNode } from '../shared/p2p/index.ts'

/**
 * The peer-store metadata key under which a peer's site is recorded on this node (UTF-8 bytes, the peer's
 * `--site`). libp2p keeps metadata per peer beside its addresses and protocols.
 */
export const PEER_SITE_METADATA_KEY = 'shoal/site'

/** The site a connected agent is in, as far as this seeder knows; undefined: none or not known. */
export type AgentSiteOf = (peer: PeerId) => Promise<string | undefined>

/**
 * Where a preheat's copies per site (`scope.sites`, seeder/prefetch.ts) learn which site an agent is in:
 * the one function to point at the swarm's own record of a peer's site.
 *
 * Today's source: prefetch learns its agents from the node's connections (`node.getPeers()`), and the only
 * per-peer record beside them is the peer store, so this reads the peer's `PEER_SITE_METADATA_KEY` entry
 * there. Nothing in the swarm writes that entry yet: until a node's site reaches its peers (identify, the
 * `have` exchange or provider records), every agent's site is unknown here and a site's copies are reported
 * as not found. When it does, record the site under this key, or make this function read it where the
 * swarm keeps it.
 */
export function agentSiteOf(node: Pick<P2PNode, 'peerStore'>): AgentSiteOf {
  const decoder = new TextDecoder()
  return async (peer) => {
    try {
      const bytes = (await node.peerStore.get(peer)).metadata.get(PEER_SITE_METADATA_KEY)
      return bytes === undefined || bytes.length === 0 ? undefined : decoder.decode(bytes)
    } catch {
      // Not in the peer store (disconnected meanwhile): no site known.
      return undefined
    }
  }
}
