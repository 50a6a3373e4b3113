import type { PeerId } from '@libp2p/interface'
import { type P2PNode, siteFromUserAgent } from '../shared/p2p/index.ts'

/** identify's peer-store metadata key for a peer's user agent, where a node announces its site. */
const AGENT_VERSION_KEY = 'AgentVersion'

/** The site a connected agent is in, as far as this seeder knows; undefined: none or not known. */
export type AgentSiteOf = (peer: PeerId) => Promise<string | undefined>

/**
 * Where a preheat's copies per site (`scope.sites`, seeder/prefetch.ts) learn which site an agent is in: the
 * user agent identify recorded for the peer when it connected (`shoal site/<name>`, shared/p2p/site.ts).
 * Every connected agent has been identified, so an idle agent that never asked this seeder for a chunk is
 * known too. The peer's own word: a liar gets a copy it was not meant to hold, nothing worse.
 */
export function agentSiteOf(node: Pick<P2PNode, 'peerStore'>): AgentSiteOf {
  const decoder = new TextDecoder()
  return async (peer) => {
    try {
      const bytes = (await node.peerStore.get(peer)).metadata.get(AGENT_VERSION_KEY)
      return bytes === undefined ? undefined : siteFromUserAgent(decoder.decode(bytes))
    } catch {
      // Not in the peer store (disconnected meanwhile): no site known.
      return undefined
    }
  }
}
