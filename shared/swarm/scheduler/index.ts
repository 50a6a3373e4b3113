// Shoal's download scheduler (agent side) and super-seeding planner (seeder side). Pure: time and randomness come
// in as arguments, nothing here does I/O, so the downloader and the fleet simulator drive the same code.
export {
  DEFAULT_BAN_MS,
  DEFAULT_BUSY_BACKOFF_MS,
  DEFAULT_INFLIGHT_TOTAL_MS,
  DEFAULT_NODE_INFLIGHT,
  DEFAULT_SEED_COPIES,
} from './constants.ts'
export { DownloadScheduler } from './download-scheduler.ts'
export { SchedulerError, type SchedulerErrorCode } from './errors.ts'
export type { PeerKind } from './peer-state.ts'
export { permutation, seededRandom } from './random.ts'
export { ReceiveBudget } from './receive-budget.ts'
export { type SeedPhase, SeedPlanner, type SeedPlannerOptions } from './seed-planner.ts'
export { SendMeter } from './send-meter.ts'
export { SiteSeedPlanner } from './site-seed-planner.ts'
export type {
  Cancellations,
  ChunkOutcome,
  ChunkRequest,
  OfferAnswer,
  OfferReply,
  PeerStats,
  SchedulerOptions,
  SiteTurns,
} from './types.ts'
export { DownloadStallClock, StallClocks, stalledMs, UNVERIFIED_STALL_FACTOR } from './stall.ts'
