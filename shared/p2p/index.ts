export {
  type Bootstrap,
  type BootstrapEntry,
  type BootstrapResult,
  type HostResolver,
  parseBootstrapEntry,
  resolveBootstrap,
  systemResolver,
} from './bootstrap.ts'
export { blobCid } from './cid.ts'
export { DEFAULT_P2P_PORT, DEFAULT_REPROVIDE_INTERVAL_MS, DHT_PROTOCOL } from './constants.ts'
export { InvalidBootstrapEntryError, InvalidIdentityError, InvalidSwarmKeyError } from './errors.ts'
export { identityPath, loadOrCreateIdentity, readIdentityFile, resolveIdentity, writeNewIdentity } from './identity.ts'
export {
  AGENT_CONNECTION_LIMITS,
  type ConnectionLimits,
  createP2PNode,
  DEFAULT_ENCRYPTERS,
  DHT_DISCOVERY_REPEAT_MS,
  type EncrypterName,
  type P2PNode,
  type P2PNodeOptions,
  type P2PServices,
  peerStoreCacheStats,
  quietDiscovery,
  reprovideSchedule,
  routingTableMapper,
  SEEDER_CONNECTION_LIMITS,
} from './node.ts'
export { PEER_STORE_CACHE_MS, type PeerStoreCacheStats } from './peer-store-cache.ts'
export { generateSwarmKey, parseSwarmKey } from './swarm-key.ts'
export { siteFromUserAgent, userAgentFor } from './site.ts'
