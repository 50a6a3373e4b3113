import type { SimParams } from '../../../bench/sim/world.ts'

const MIB = 1024 * 1024

/** A small world for the simulator's tests: 4 nodes, full links, a 600-byte config and two 4 MiB layers. */
export function smallWorld(over: Partial<SimParams> = {}): SimParams {
  return {
    nodes: 4,
    links: { originUp: 40, cacheUp: 100, cacheDown: 100, seederUp: 160, seederDown: 160, nodeUp: 40, nodeDown: 40 },
    blobBytes: [600, 4 * MIB, 4 * MIB],
    manifestBytes: 800,
    chunkBytes: 1 * MIB,
    rttMs: 2,
    wireEfficiency: 1,
    uploadSlots: 3,
    seederUploadSlots: 8,
    slotWaitMs: 300,
    sendBufferBytes: 0,
    lookupPeriodMs: 1000,
    lookupLatencyMs: 10,
    lookupResults: 20,
    dhtReplication: 20,
    provideLatencyMs: 10,
    maxPeers: 40,
    hints: 16,
    stallTimeoutMs: 60_000,
    chunkDeadlineMs: 30_000,
    originControlBytesPerNode: 0,
    seed: 3,
    limitMs: 600_000,
    ...over,
  }
}
