import { mkdir, readFile } from 'node:fs/promises'
import { runService } from '../shared/process/service.ts'
import { stopList } from '../shared/process/stop-list.ts'
import { createLogger, type Logger } from '../shared/log/index.ts'
import { createMetrics, type Metrics } from '../shared/metrics/index.ts'
import { buildOpsApp, Readiness, RecentPulls } from '../shared/ops/index.ts'
import { credentialsFrom, OriginClient, resolveUpstream } from '../shared/origin/index.ts'
import { throttled } from '../shared/rate/index.ts'
import { createP2PNode, resolveIdentity } from '../shared/p2p/index.ts'
import { WorkerHashPool } from '../shared/hashing/index.ts'
import { type ContentStore, openFsStore, Retention } from '../shared/store/index.ts'
import {
  BulkClient,
  createBulkCredentials,
  RECEIVE_BUFFERS_BYTES,
  RECEIVE_BUFFERS_IDLE_MS,
} from '../shared/swarm/bulk/index.ts'
import { ChunkBuffers } from '../shared/swarm/serve/index.ts'
import {
  agentUploadSlots,
  parseSeederAddr,
  type SeederRef,
  type WanBudget,
  wanBudgetFor,
} from '../shared/swarm/index.ts'
import { LiveBlobs } from '../shared/swarm/live.ts'
import { FsMapStore } from '../shared/swarm/maps/index.ts'
import { ChunkClient, ChunkServer } from '../shared/swarm/protocol/index.ts'
import { StoreChunkSource } from '../shared/swarm/source.ts'
import { startManifestSharing } from '../shared/swarm/manifests/index.ts'
import type { ConfigSources } from '../shared/config/index.ts'
import type { Digest } from '../shared/oci/index.ts'
import { buildApp } from './app.ts'
import { Authorizer } from './authz.ts'
import { Downloads } from './blobs/download.ts'
import { fillPolicy } from './blobs/fill.ts'
import { fetchFromOrigin } from './blobs/origin-fetch.ts'
import { BlobService } from './blobs/service.ts'
import { Prefetcher } from './prefetch.ts'
import { type AgentConfig, loadAgentConfig } from './config.ts'
import { agentStatus, type SwarmStatusPart } from './status.ts'
import { ManifestService } from './registry/manifests.ts'
import { dhtFindProviders, ProviderLookups } from './swarm/lookups.ts'
import { Announcer, dhtProviderRouting } from './swarm/provider.ts'
import { attestingWatch, peerFetch } from './swarm/peer-seed.ts'
import { Swarm } from './swarm/swarm.ts'

/** How long a shutdown waits for in-flight requests before it aborts their downloads. */
const DRAIN_TIMEOUT_MS = 10_000
/** A DHT provider lookup that takes longer starts the download with what it found. */
const LOOKUP_TIMEOUT_MS = 2000
/** A finished provider lookup is reused this long (downloads look again every second while they run). */
const LOOKUP_CACHE_MS = 500

export interface RunningAgent {
  readonly url: string
  /** Set when the swarm is on. */
  readonly peerId: string | undefined
  readonly multiaddrs: readonly string[]
  readonly config: AgentConfig
  readonly metrics: ReturnType<typeof createMetrics>
  /** The --metrics-listen URL, when on. */
  readonly metricsUrl: string | undefined
  stop(): Promise<void>
}

/** Wires one agent from a validated config and starts listening. */
export async function startAgent(config: AgentConfig, opts: { log?: Logger } = {}): Promise<RunningAgent> {
  const log = opts.log ?? createLogger({ level: config.logLevel, name: 'agent' })
  await mkdir(config.data, { recursive: true })
  const metrics = createMetrics()
  const readiness = new Readiness(['store', ...(config.p2pListen.length > 0 ? ['libp2p'] : [])])
  // Filled in once the parts exist; until then /status says only that the agent is starting.
  const statusOf: { get?: () => Promise<unknown> } = {}
  const ops = {
    notReady: () => readiness.reason(),
    status: () => statusOf.get?.() ?? { role: 'agent', ready: false, reason: readiness.reason() },
  }
  // Up before the store opens (a large store takes a while to check): probes see 503 with the reason meanwhile.
  const opsApp =
    config.metricsListen === undefined
      ? undefined
      : buildOpsApp({ ...ops, metrics, log: log.child({ component: 'ops' }) })
  const metricsUrl = opsApp === undefined ? undefined : await listenUrl(opsApp, config.metricsListen!)
  try {
    // The chunk source exists only after the store it serves from: eviction reaches it through here.
    const late: {
      source?: StoreChunkSource
      prefetch?: Prefetcher
      announcer?: Announcer
      peerFetch?: ReturnType<typeof peerFetch>
    } = {}
    // Whole-blob SHA-256 on worker threads: the main thread only moves bytes, and a node with more cores hashes on
    // more of them.
    const hashing = new WorkerHashPool()
    const stores = await openFsStore({
      dir: config.data,
      maxBytes: config.cacheMaxBytes,
      hashing,
      onEvict: (digest) => {
        late.source?.noteRemoved(digest)
        late.announcer?.withdraw(digest)
      },
    })
    readiness.done('store')
    // A site's preheated copies (held when a trusted seeder asks): pinned for --preheat-ttl, kept across restarts.
    const holds = new Retention({ store: stores.blobs, ttlMs: config.preheatTtlMs, dataDir: config.data, log })
    await holds.load()
    metrics.sources.cacheBytes = () => stores.blobs.usage().bytes
    const origin = new OriginClient({ credentials: credentialsFrom(config.registries), onBytes: () => {} })
    const isPublic = (registry: string) => config.registries.get(registry)?.public === true
    const authorizer = new Authorizer({ origin, ttlMs: config.authTtlMs, staleTtlMs: config.staleAuthTtlMs, isPublic })
    const downloads = new Downloads()
    const closing = new AbortController()
    // Bytes to and from other sites, and from the origin, also count against the WAN caps (edge sites).
    const budget = wanBudgetFor(config)
    const originBucket = budget.fromOrigin()
    const p2p =
      config.p2pListen.length > 0 ? await startSwarm(config, stores.blobs, metrics, log, late, budget) : undefined
    if (p2p !== undefined) {
      readiness.done('libp2p')
      metrics.sources.peers = () => p2p.node.getPeers().length
    }
    metrics.sources.inflight = () => downloads.list().length
    late.source = p2p?.source
    late.announcer = p2p?.announcer
    const swarm = p2p?.swarm
    const recent = new RecentPulls()
    const fill = fillPolicy({
      store: stores.blobs,
      ...(p2p === undefined
        ? {}
        : {
            swarm: {
              fill: (blob, sink, signal) =>
                p2p.swarm.fill(
                  sink,
                  { digest: blob.digest, registry: blob.upstream.registry, name: blob.name },
                  signal,
                ),
            },
          }),
      origin: (blob, sink, signal) =>
        fetchFromOrigin(sink, {
          origin,
          store: stores.blobs,
          authorizer,
          metrics,
          chunkSize: config.chunkSize,
          upstream: blob.upstream,
          name: blob.name,
          digest: blob.digest,
          authorization: blob.authorization,
          signal,
          ...(originBucket === undefined ? {} : { throttle: (body) => throttled(body, originBucket) }),
          // With peer proofs, whatever this agent pulls from the origin it signs and serves chunk by chunk: it is
          // the elected puller, or the one peers fall back to.
          ...(p2p?.peerSeed === undefined ? {} : { watch: attestingWatch(p2p.peerSeed, blob.digest) }),
        }),
      onComplete: (digest, info) => {
        p2p?.source.noteComplete(digest, info.size, config.chunkSize)
        p2p?.announcer.announce(digest)
      },
      authorize: (blob, signal) =>
        authorizer.authorize(blob.upstream, blob.name, 'blobs', blob.digest, blob.authorization, signal),
      onAbandoned: (digest) => p2p?.announcer.withdraw(digest),
      // Recent pulls for /status and the status page.
      onPulled: (pull) => recent.add(pull),
      signal: closing.signal,
      log,
    })
    const blobs = new BlobService({
      store: stores.blobs,
      origin,
      authorizer,
      downloads,
      metrics,
      log: log.child({ component: 'blobs' }),
      fill,
    })
    const upstreamFor = (r: string | undefined) =>
      resolveUpstream(r, { defaultOrigin: config.origin, insecureRegistries: config.insecureRegistries })
    if (p2p?.peerSeed !== undefined) {
      // Peers may make this agent pull only from the registries it is configured for.
      const known = new Set([upstreamFor(undefined).registry, ...config.registries.keys()])
      late.peerFetch = peerFetch({
        store: stores.blobs,
        maps: p2p.maps,
        downloads,
        fill,
        upstreamFor: (r) => {
          const u = upstreamFor(r)
          return known.has(u.registry) || config.insecureRegistries.includes(u.registry) ? u : undefined
        },
        chunkSize: config.chunkSize,
        signal: closing.signal,
      })
    }
    if (swarm !== undefined)
      late.prefetch = new Prefetcher({
        trusted: swarm.trustedSigners,
        store: stores.blobs,
        downloads,
        fill,
        upstreamFor,
        signal: closing.signal,
        log: log.child({ component: 'prefetch' }),
        ...(config.preheatTtlMs > 0 ? { holds } : {}),
      })
    // Manifest sharing: bodies by digest from seeders and peers; the origin still resolves and authorizes.
    const sharing =
      p2p === undefined
        ? undefined
        : await startManifestSharing({
            node: p2p.node,
            cache: stores.manifests,
            seeders: config.seeders.map((s) => parseSeederAddr(s)!.id),
            log: log.child({ component: 'manifests' }),
          })
    const manifests = new ManifestService({
      origin,
      cache: stores.manifests,
      authorizer,
      metrics,
      log: log.child({ component: 'manifests' }),
      tagTtlMs: config.tagTtlMs,
      ...(sharing === undefined ? {} : { peers: sharing.peers }),
    })
    const swarmPart: SwarmStatusPart | undefined =
      p2p === undefined
        ? undefined
        : {
            peerId: p2p.node.peerId.toString(),
            multiaddrs: () => p2p.node.getMultiaddrs().map((m) => m.toString()),
            bulkPort: p2p.bulkPort,
            transfers: () => p2p.client.transfers,
            peers: () =>
              p2p.node
                .getPeers()
                .map((id) => ({ id: id.toString(), seeder: p2p.swarm.trustedSigners.has(id.toString()) })),
          }
    statusOf.get = () =>
      agentStatus({
        readiness,
        store: stores.blobs,
        downloads,
        recent,
        metrics,
        // bytes/s on the wire; 0 = no cap
        limits: { upload: config.uploadRate, download: config.downloadRate, origin: config.originRate },
        ...(swarmPart === undefined ? {} : { swarm: swarmPart }),
      })
    const app = buildApp({
      log,
      metrics,
      origin,
      blobs,
      manifests,
      defaultOrigin: config.origin,
      insecureRegistries: config.insecureRegistries,
      readOnly: config.readOnly,
      ops,
    })
    const url = await listenUrl(app, config.listen)
    log.info({ url, metrics: metricsUrl, origin: config.origin.href, data: config.data }, 'agent listening')
    return {
      url,
      peerId: p2p?.node.peerId.toString(),
      multiaddrs: p2p?.node.getMultiaddrs().map((m) => m.toString()) ?? [],
      config,
      metrics,
      metricsUrl,
      stop: stopList([
        // Drain in-flight requests, but not forever: after DRAIN_TIMEOUT_MS downloads are aborted,
        // which ends the responses still waiting on them.
        async () => {
          const timer = setTimeout(() => closing.abort(), DRAIN_TIMEOUT_MS)
          await app.close()
          clearTimeout(timer)
        },
        () => opsApp?.close(),
        () => closing.abort(),
        () => sharing?.stop(),
        () => p2p?.stop(),
        () => origin.stop(),
        () => holds.stop(),
        () => stores.stop(),
        () => hashing.stop(),
      ]),
    }
  } catch (err) {
    // A start that fails after the metrics listener is up must not leave it holding the process open.
    await opsApp?.close()
    throw err
  }
}

/** Listens and returns the URL it is reachable at (the real port when `port` is 0). */
async function listenUrl(
  app: { listen(o: { host: string; port: number }): Promise<unknown>; server: { address(): unknown } },
  at: { readonly host: string; readonly port: number },
): Promise<string> {
  await app.listen({ host: at.host, port: at.port })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr !== null ? (addr as { port: number }).port : at.port
  return `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${port}`
}

/** `shoal agent …`: reads flags, SHOAL_* and the config file, runs until SIGTERM/SIGINT. */
export function agentMain(argv: ConfigSources['argv'], env: NodeJS.ProcessEnv): Promise<number> {
  return runService('agent', argv, env, loadAgentConfig, (config) => startAgent(config))
}

/** The swarm half of an agent: libp2p node, chunk server and client, and the downloader. */
async function startSwarm(
  config: AgentConfig,
  store: ContentStore,
  metrics: Metrics,
  log: Logger,
  late: { readonly prefetch?: Prefetcher; readonly peerFetch?: ReturnType<typeof peerFetch> },
  budget: WanBudget,
) {
  const swarmKey = config.swarmKeyFile === undefined ? undefined : await readFile(config.swarmKeyFile)
  // The config accepted only seeder addresses.
  const seeders: SeederRef[] = config.seeders.map((s) => parseSeederAddr(s)!)
  const privateKey = await resolveIdentity({
    dataDir: config.data,
    identityFile: config.identityFile,
    onMismatch: (message) => log.warn({ component: 'p2p' }, message),
  })
  const node = await createP2PNode({
    dataDir: config.data,
    privateKey,
    listen: config.p2pListen,
    ...(config.p2pAnnounce.length > 0 ? { announce: config.p2pAnnounce } : {}),
    bootstrap: [...config.seeders, ...config.bootstrap],
    ...(swarmKey === undefined ? {} : { swarmKey }),
    ...(config.site === undefined ? {} : { site: config.site }),
    dhtServer: true,
    reprovideIntervalMs: config.reprovideIntervalMs,
  })
  const maps = await FsMapStore.open({ dataDir: config.data })
  const live = new LiveBlobs()
  // The swarm needs the source and the source tells the swarm who asked: tied after both exist.
  const tie: { swarm?: Swarm } = {}
  const source = new StoreChunkSource({
    store,
    maps,
    live,
    chunkSize: config.chunkSize,
    advertise: (digest, have, ctx) => {
      if (ctx !== undefined) tie.swarm?.noteInterest(digest, ctx.peer.toString(), ctx.site)
      return have.bitfield
    },
    // Peer proofs: a peer that elected this agent asks it to pull a blob for the swarm.
    ...(config.peerProofs
      ? {
          fetch: (digest: Digest, registry: string, name: string, signal: AbortSignal) => {
            if (late.peerFetch === undefined) return Promise.reject(new Error('agent not ready'))
            return late.peerFetch(digest, registry, name, signal)
          },
        }
      : {}),
  })
  await source.load()
  // The bulk path's certificate is bound to the node's identity key: peers check it against our peer id.
  const bulk =
    config.bulkListen === undefined
      ? undefined
      : { credentials: await createBulkCredentials(privateKey), listen: config.bulkListen }
  // Chunk bodies are received into reused buffers, given back once written to the partial. Shared memory: the
  // hashing thread reads a chunk in place for the whole-blob digest (no copy).
  const received = new ChunkBuffers({ maxBytes: RECEIVE_BUFFERS_BYTES, idleMs: RECEIVE_BUFFERS_IDLE_MS, shared: true })
  const bulkClient =
    bulk === undefined ? undefined : new BulkClient({ credentials: bulk.credentials, buffers: received })
  const server = new ChunkServer(
    { registrar: node },
    {
      source,
      ...(config.site === undefined ? {} : { site: config.site }),
      ...(bulk === undefined ? {} : { bulk }),
      // In a site, peers outside it share one slot of their own (agentUploadSlots): the site's WAN uplink is one.
      uploads: agentUploadSlots(config.uploadSlots, config.site, budget),
      ...(budget.upload === undefined ? {} : { uploadBucket: budget.upload }),
      uploadBudget: budget,
      onServed: (_peer, bytes) => metrics.bytesServed.inc({ to: 'peer' }, bytes),
      // A seeder's preheat asking this agent to fill its cache ahead of need (wired once the blob service exists).
      prefetch: async (digest, registry, name, ctx, opts) => {
        if (late.prefetch === undefined) throw new Error('agent not ready')
        await late.prefetch.accept(digest, registry, name, ctx, opts)
      },
      log: log.child({ component: 'chunks' }),
    },
  )
  await server.start()
  const announcer = new Announcer({ routing: dhtProviderRouting(node), log: log.child({ component: 'provide' }) })
  const client = new ChunkClient({
    node,
    ...(bulkClient === undefined ? {} : { bulk: bulkClient }),
    downloadBudget: budget,
  })
  const swarm = new Swarm({
    node,
    client,
    store,
    maps,
    live,
    source,
    seeders,
    metrics,
    log: log.child({ component: 'swarm' }),
    stallTimeoutMs: config.stallTimeoutMs,
    ...(config.site === undefined ? {} : { site: config.site }),
    recycle: (bytes) => received.give(bytes),
    peerProofs: config.peerProofs,
    announcer,
    lookups: new ProviderLookups({
      find: dhtFindProviders(node),
      timeoutMs: LOOKUP_TIMEOUT_MS,
      cacheMs: LOOKUP_CACHE_MS,
      onFirst: (ms) => metrics.dhtLookupSeconds.observe(ms / 1000),
    }),
  })
  tie.swarm = swarm
  for (const s of seeders) void node.dial(s.addr).catch(() => {})
  // Provider records live in the node's memory: what the store held before a restart is announced again.
  for await (const info of store.list()) announcer.announce(info.digest)
  return {
    node,
    source,
    swarm,
    announcer,
    client,
    maps,
    /** What an origin pull needs to sign and serve its chunks (peer proofs on). */
    peerSeed: config.peerProofs
      ? { live, maps, source, announcer, key: privateKey, log: log.child({ component: 'peer-seed' }) }
      : undefined,
    /** The bulk (HTTPS) chunk port, when serving one. */
    bulkPort: server.bulkPort,
    stop: stopList([() => announcer.stop(), () => server.stop(), () => bulkClient?.stop(), () => node.stop()]),
  }
}
