// Serving chunks to peers, whatever carries the bytes: what a node serves (ChunkSource), the upload slots every
// transport draws on, and the checks a chunk passes before it is sent. Below both the libp2p chunk protocol and
// the bulk path, so each applies the same rules and neither imports the other for them.
export { ChunkBuffers } from './chunk-buffers.ts'
export type { ChunkSource, OnServed, RequestContext, SourceHave } from './chunk-source.ts'
export { type ServableChunk, takeChunk } from './take-chunk.ts'
export { SLOT_WAIT_MS, UPLOAD_CONTENTION_MS, UploadSlots } from './upload-slots.ts'
export {
  AGENT_WAN_UPLOADS,
  MAX_SEEDER_SITE_UPLOADS,
  SEEDER_UPLOADS_PER_SITE,
  agentUploadSlots,
  type PeerSites,
  seederUploadSlots,
  SITE_SEND_GRACE_MS,
  SiteUploadSlots,
  type SiteUploadSlotsInit,
} from './site-slots.ts'
