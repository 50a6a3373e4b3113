import { bytesBySource, bytesServedTo, type Metrics } from '../shared/metrics/index.ts'
import type { Readiness, RecentPulls } from '../shared/ops/index.ts'
import type { ContentStore } from '../shared/store/index.ts'
import type { Downloads } from './blobs/download.ts'

/** The swarm half of an agent's status, when the swarm is on. */
export interface SwarmStatusPart {
  readonly peerId: string
  multiaddrs(): string[]
  readonly bulkPort: number | undefined
  transfers(): unknown
  /** Connected peers; `seeder` when its key is one this agent trusts. */
  peers(): { readonly id: string; readonly seeder: boolean }[]
}

export interface AgentStatusParts {
  readonly readiness: Readiness
  readonly store: ContentStore
  readonly downloads: Downloads
  readonly recent: RecentPulls
  readonly metrics: Metrics
  readonly limits: { readonly upload: number; readonly download: number; readonly origin: number }
  readonly swarm?: SwarmStatusPart
}

/**
 * GET /status of an agent, also what the status page draws. Anyone who reaches the metrics listener reads it,
 * so it names blobs by digest and size only: which repositories a node pulls stays with the origin's auth.
 */
export async function agentStatus(p: AgentStatusParts): Promise<Record<string, unknown>> {
  const peerList = p.swarm?.peers() ?? []
  return {
    role: 'agent',
    ready: p.readiness.reason() === undefined,
    peerId: p.swarm?.peerId,
    multiaddrs: p.swarm?.multiaddrs() ?? [],
    bulkPort: p.swarm?.bulkPort,
    // Chunks received over the bulk (HTTPS) path and over libp2p streams, and bulk attempts that fell back.
    chunks: p.swarm?.transfers(),
    peers: peerList.length,
    peerList,
    cache: p.store.usage(),
    bytes: await bytesBySource(p.metrics),
    served: await bytesServedTo(p.metrics),
    // bytes/s on the wire; 0 = no cap
    limits: p.limits,
    downloads: p.downloads.list().map((d) => {
      const partial = d.partial
      return {
        digest: d.digest,
        state: d.state,
        size: d.knownSize,
        bytes: partial?.prefixBytes ?? 0,
        ...(partial === undefined ? {} : { chunks: { done: partial.written.count, total: partial.chunkCount } }),
      }
    }),
    recent: p.recent.list(),
  }
}
