// The swarm's public face for agent/ and seeder/. The protocol, bulk path, scheduler and map store keep their own
// index.ts; what lives here is the rules both binaries must agree on.
export {
  type Candidate,
  rendezvousOrder,
  rendezvousOwner,
  rendezvousScore,
  type Standing,
  type Turn,
  turn,
} from './election.ts'
export {
  parsePeerAddr,
  parseSeederAddr,
  type PeerRef,
  peerIdOf,
  type SeederRef,
  seederFor,
  seedersFromBootstrap,
  seedersInOrder,
  withoutPeerId,
  withPeerId,
} from './seeders.ts'
export { agentUploadSlots, seederUploadSlots } from './serve/index.ts'
export {
  chunkKey,
  outsideSiteRules,
  sameSite,
  SITE_SMALL_BLOB_BYTES,
  SiteElection,
  type SiteElectionInit,
} from './sites.ts'
export { WanBudget, type WanBudgetInit, wanBudgetFor } from './wan-budget.ts'
