import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

export type ByteSource = 'origin' | 'seeder' | 'peer' | 'cache'

/**
 * Where the gauges read their values, set by the wiring once the parts exist: each gauge is sampled when
 * /metrics is scraped, so it is right at every scrape whatever path changed it (a plain mirror's cache
 * fills without the swarm; peers come and go without a hook here). A gauge whose source is unset reads 0.
 */
export interface GaugeSources {
  /** libp2p peers connected now. */
  peers?: () => number
  /** Bytes held in the content store, partial reservations included. */
  cacheBytes?: () => number
  /** Blob downloads (agent) or origin pulls (seeder) under way. */
  inflight?: () => number
}

/**
 * One registry per process part (not prom-client's global), so several agents can run in one
 * process in tests and the demo without their counters mixing.
 */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry()
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'shoal_process_' })
  const r = [registry]
  const sources: GaugeSources = {}
  const sampled = (name: string, help: string, source: () => (() => number) | undefined) =>
    new Gauge({
      name,
      help,
      registers: r,
      collect() {
        this.set(source()?.() ?? 0)
      },
    })
  return {
    registry,
    sources,
    httpRequests: new Counter({
      name: 'shoal_http_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames: ['route', 'method', 'status'] as const,
      registers: r,
    }),
    bytesServed: new Counter({
      name: 'shoal_bytes_served_total',
      help: 'Blob bytes sent, by whom they went to (client, peer)',
      labelNames: ['to'] as const,
      registers: r,
    }),
    bytesReceived: new Counter({
      name: 'shoal_bytes_received_total',
      help: 'Blob bytes received, by source',
      labelNames: ['source'] as const,
      registers: r,
    }),
    cacheLookups: new Counter({
      name: 'shoal_cache_lookups_total',
      help: 'Cache lookups for blobs and manifests, by kind and result',
      labelNames: ['kind', 'result'] as const,
      registers: r,
    }),
    originFetches: new Counter({
      name: 'shoal_origin_fetches_total',
      help: 'Requests sent to an origin registry, by kind',
      labelNames: ['kind'] as const,
      registers: r,
    }),
    digestFailures: new Counter({
      name: 'shoal_digest_failures_total',
      help: 'Content whose bytes did not match their digest, by source',
      labelNames: ['source'] as const,
      registers: r,
    }),
    chunksRejected: new Counter({
      name: 'shoal_chunks_rejected_total',
      help: 'Chunks that failed verification, by reason',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    peersConnected: sampled('shoal_peers_connected', 'libp2p peers connected now', () => sources.peers),
    cacheBytes: sampled('shoal_cache_bytes', 'Bytes held in the content store', () => sources.cacheBytes),
    blobsInFlight: sampled(
      'shoal_blobs_in_flight',
      'Blob downloads (agent) or origin pulls (seeder) under way',
      () => sources.inflight,
    ),
    dhtLookupSeconds: new Histogram({
      name: 'shoal_dht_lookup_seconds',
      help: 'Time to the first provider of a DHT lookup',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

/** Blob bytes received so far, by source (origin, seeder, peer), for /status and summaries. */
export async function bytesBySource(metrics: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const v of (await metrics.bytesReceived.get()).values) out[String(v.labels['source'])] = v.value
  return out
}

/** Blob bytes sent so far, by whom they went to (client, peer), for /status. */
export async function bytesServedTo(metrics: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const v of (await metrics.bytesServed.get()).values) out[String(v.labels['to'])] = v.value
  return out
}
