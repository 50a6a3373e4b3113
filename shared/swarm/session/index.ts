// A blob's download from the swarm: the loop policy around the pure scheduler (ticks, rediscovery, idle requests,
// proofs, bans, stall), against small interfaces, so the agent drives it over libp2p and the simulator over
// virtual time.
export {
  BUDGET_QUIET_MS,
  CHUNK_IDLE_MS,
  MAP_RECHECK_MS,
  MAP_RECHECK_TIMEOUT_MS,
  REDISCOVER_MS,
  TICK_MS,
} from './constants.ts'
export { systemClock } from './clock.ts'
export { DownloadSession } from './download-session.ts'
export { SessionError, type SessionErrorCode } from './errors.ts'
export { proveResumed, type ResumedChunks } from './resume.ts'
export type {
  ChunkAnswer,
  ChunkCall,
  ChunkFetch,
  ChunkFetcher,
  ChunkVerifier,
  DownloadSessionComponents,
  DownloadSessionInit,
  HaveSink,
  HolderSource,
  MaybePromise,
  PartialSink,
  RejectReason,
  SessionClock,
  SessionCounts,
  SessionEvents,
  SessionSite,
} from './types.ts'
