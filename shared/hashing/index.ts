/** Whole-blob hashing, on the calling thread or on a pool of worker threads. */
export {
  type BlobHasher,
  free as freePiece,
  type HashPool,
  inlineHashing,
  WorkerHashPool,
  type WorkerHashPoolOptions,
} from './pool.ts'
export { HASH_BACKLOG_BYTES, HASH_WORKER_IDLE_MS, HASH_WORKERS_MAX } from './constants.ts'
