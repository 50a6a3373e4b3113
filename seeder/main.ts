import { mkdir, readFile } from 'node:fs/promises'
import Fastify from 'fastify'
import { runService } from '../shared/process/service.ts'
import { stopList } from '../shared/process/stop-list.ts'
import { createLogger, type Logger } from '../shared/log/index.ts'
import { bytesBySource, bytesServedTo, createMetrics, type Metrics } from '../shared/metrics/index.ts'
import { opsRoutes, Readiness } from '../shared/ops/index.ts'
import { credentialsFrom, OriginClient, resolveUpstream, type Upstream } from '../shared/origin/index.ts'
import { createP2PNode, type P2PNode, resolveIdentity, SEEDER_CONNECTION_LIMITS } from '../shared/p2p/index.ts'
import type { Digest } from '../shared/oci/index.ts'
import { openFsStore, Retention } from '../shared/store/index.ts'
import { createBulkCredentials } from '../shared/swarm/bulk/index.ts'
import { seedersFromBootstrap, seederUploadSlots, wanBudgetFor } from '../shared/swarm/index.ts'
import { LiveBlobs } from '../shared/swarm/live.ts'
import { FsMapStore } from '../shared/swarm/maps/index.ts'
import { ChunkClient, ChunkServer } from '../shared/swarm/protocol/index.ts'
import { ManifestServer } from '../shared/swarm/manifests/index.ts'
import { manifestPull } from './manifest-pull.ts'
import { StoreChunkSource } from '../shared/swarm/source.ts'
import type { ConfigSources } from '../shared/config/index.ts'
import { bearerGuard } from './api-auth.ts'
import { loadSeederConfig, type SeederConfig } from './config.ts'
import { notificationRoutes } from './notifications.ts'
import { rendezvousOwners, seederPrefetchHandler } from './owners.ts'
import { Preheater, preheatRoutes } from './preheat.ts'
import { agentSiteOf } from './agent-sites.ts'
import { agentPrefetcher } from './prefetch.ts'
import { Puller } from './puller.ts'
import { PeerHints } from './peer-hints.ts'
import { SuperSeeder } from './super-seeder.ts'
import { API_AJV_OPTIONS } from './schemas.ts'

export interface RunningSeeder {
  readonly peerId: string
  readonly multiaddrs: readonly string[]
  readonly apiUrl: string
  readonly node: P2PNode
  readonly metrics: Metrics
  readonly puller: Puller
  readonly preheater: Preheater
  readonly retention: Retention
  stop(): Promise<void>
}

/** Wires one seeder: store, libp2p node (DHT server, bootstrap for agents), chunk server, origin puller, API. */
export async function startSeeder(config: SeederConfig, opts: { log?: Logger } = {}): Promise<RunningSeeder> {
  const log = opts.log ?? createLogger({ level: config.logLevel, name: 'seeder' })
  await mkdir(config.data, { recursive: true })
  // The seeder's key signs chunk maps: agents trust this peer id, so an --identity file wins over the data dir.
  const key = await resolveIdentity({
    dataDir: config.data,
    identityFile: config.identityFile,
    onMismatch: (message) => log.warn({ component: 'p2p' }, message),
  })
  const metrics = createMetrics()
  const readiness = new Readiness(['store', 'libp2p'])
  // The chunk source exists only after the store it serves from: eviction reaches it through here.
  const late: { source?: StoreChunkSource; preheater?: Preheater } = {}
  const stores = await openFsStore({
    dir: config.data,
    maxBytes: config.cacheMaxBytes,
    onEvict: (d) => late.source?.noteRemoved(d),
  })
  const maps = await FsMapStore.open({ dataDir: config.data })
  readiness.done('store')
  metrics.sources.cacheBytes = () => stores.blobs.usage().bytes
  const retention = new Retention({ store: stores.blobs, ttlMs: config.preheatTtlMs, dataDir: config.data, log })
  await retention.load()
  const swarmKey = config.swarmKeyFile === undefined ? undefined : await readFile(config.swarmKeyFile)
  const node = await createP2PNode({
    dataDir: config.data,
    privateKey: key,
    listen: config.p2pListen,
    ...(config.p2pAnnounce.length > 0 ? { announce: config.p2pAnnounce } : {}),
    bootstrap: config.bootstrap,
    ...(swarmKey === undefined ? {} : { swarmKey }),
    ...(config.site === undefined ? {} : { site: config.site }),
    dhtServer: true,
    connections: SEEDER_CONNECTION_LIMITS,
    // The seeder provides nothing (agents always ask it directly), but it holds agents' provider records:
    // the interval sets how long one outlives an agent that evicted the blob.
    reprovideIntervalMs: config.reprovideIntervalMs,
  })
  readiness.done('libp2p')
  metrics.sources.peers = () => node.getPeers().length
  const origin = new OriginClient({ credentials: credentialsFrom(config.credentials) })
  const live = new LiveBlobs()
  const client = new ChunkClient({ node })
  // Bytes to agents of other sites, and from the origin, also count against the WAN caps (edge sites).
  const budget = wanBudgetFor({ ...config, downloadRate: 0 })
  const seeding = new SuperSeeder(client)
  const hints = new PeerHints(node)
  const defaultUpstream = resolveUpstream(undefined, {
    defaultOrigin: config.origin,
    insecureRegistries: config.insecureRegistries,
  })
  const upstreamFor = (registry: string): Upstream | undefined => {
    if (registry === defaultUpstream.registry) return defaultUpstream
    if (!config.insecureRegistries.includes(registry) && !config.credentials.has(registry)) return undefined
    return resolveUpstream(registry, { defaultOrigin: config.origin, insecureRegistries: config.insecureRegistries })
  }
  const chunkSource: StoreChunkSource = new StoreChunkSource({
    store: stores.blobs,
    maps,
    live,
    chunkSize: config.chunkSize,
    advertise: (digest, have, ctx) => seeding.advertise(digest, have.bitfield, ctx, have),
    peersFor: (digest, ctx) => {
      if (ctx === undefined) return []
      hints.note(digest, ctx.peer, ctx.site)
      return hints.peersFor(digest, ctx.peer.toString(), ctx.site)
    },
    fetch: (digest, registry, name) => puller.fetch(digest, registry, name),
  })
  late.source = chunkSource
  const puller: Puller = new Puller({
    origin,
    store: stores.blobs,
    maps,
    live,
    source: chunkSource,
    key,
    chunkSize: config.chunkSize,
    metrics,
    log: log.child({ component: 'puller' }),
    upstreamFor,
    onProgress: (digest, bytes) => late.preheater?.noteProgress(digest, bytes),
    ...(budget.fromOrigin() === undefined ? {} : { originBucket: budget.fromOrigin()! }),
  })
  await chunkSource.load()
  metrics.sources.inflight = () => puller.inflight.length
  const server = new ChunkServer(
    { registrar: node },
    {
      source: chunkSource,
      ...(config.site === undefined ? {} : { site: config.site }),
      // Chunk bytes over HTTPS to peers holding a ticket; the certificate is bound to the seeder's identity key.
      ...(config.bulkListen === undefined
        ? {}
        : { bulk: { credentials: await createBulkCredentials(key), listen: config.bulkListen } }),
      // More uploads at once than an agent (3): the seeder sits on a wider link and serves the whole fleet; with
      // 3, each slot's flow ran at a receiver's shared downlink rate and the seeder used a fraction of its uplink
      // (bench/sim: preheated N = 8 at 16/64 mbit, max 2.24 → 1.99 × T* with 8). The slots go to distinct
      // receivers while several wait (UploadSlots), so a new chunk still reaches several agents at once.
      // With edge sites, each site's agents draw on slots of their own besides these (seederUploadSlots): an upload
      // into a site runs at most at its WAN rate, so eight in all left most of a wide uplink idle.
      uploads: seederUploadSlots(8, budget),
      ...(budget.upload === undefined ? {} : { uploadBucket: budget.upload }),
      // A seeder in another site than the agent (or in no site: the core) is across the WAN from it.
      uploadBudget: budget,
      onServed: (peer, bytes, chunk) => {
        metrics.bytesServed.inc({ to: 'peer' }, bytes)
        seeding.served(chunk.digest, peer.toString(), chunk.index)
        // The served chunk's reservation is free: that agent's long poll hears of the next ones now.
        chunkSource.readvertise(chunk.digest, peer.toString())
      },
      // Another seeder preheating an image asks this one, the owner of a blob, to pull and keep it.
      prefetch: seederPrefetchHandler({
        seeders: seedersFromBootstrap(config.bootstrap),
        start: (digest, registry, name) => puller.start(digest, registry, name),
        keep: (digest) => retention.keep(digest),
      }),
      log: log.child({ component: 'chunks' }),
    },
  )
  await server.start()
  // Manifest sharing: the manifests a preheat resolved, or pulled by digest once when agents first ask, verified, to
  // agents asking by the digest their origin gave.
  const manifestServer = new ManifestServer(
    { registrar: node },
    {
      cache: stores.manifests,
      fetch: manifestPull({ origin, upstreamFor, cache: stores.manifests }),
      log: log.child({ component: 'manifests' }),
    },
  )
  await manifestServer.start()
  const peerId = node.peerId.toString()
  const multiaddrs = node.getMultiaddrs().map((m) => m.toString())
  // GET /status and the status page. Anyone who reaches the API reads it without a token: digests, sizes and
  // job ids only, never an image or repository name (GET /api/v1/preheat/<id>, behind the token, has those).
  const status = async () => ({
    role: 'seeder',
    ready: readiness.reason() === undefined,
    peerId,
    multiaddrs,
    bulkPort: server.bulkPort,
    peers: node.getPeers().length,
    peerList: node.getPeers().map((p) => ({ id: p.toString(), seeder: seederIds.has(p.toString()) })),
    cache: stores.blobs.usage(),
    pulling: puller.inflight,
    // bytes/s on the wire; 0 = no cap
    limits: { upload: config.uploadRate, origin: config.originRate },
    bytes: await bytesBySource(metrics),
    served: await bytesServedTo(metrics),
    jobs: preheater.jobs().flatMap((id) => {
      const j = preheater.get(id)
      if (j === undefined) return []
      const size = j.layers.reduce((a, l) => a + l.size, 0)
      return [{ id, state: j.state, layers: j.layers.length, size, bytes: j.layers.reduce((a, l) => a + l.bytes, 0) }]
    }),
  })
  const seederIds = new Set(seedersFromBootstrap(config.bootstrap).map((s) => s.id))
  const api = Fastify({
    loggerInstance: log.child({ component: 'api' }),
    ajv: API_AJV_OPTIONS,
    ...(config.apiTls === undefined
      ? {}
      : { https: { cert: await readFile(config.apiTls.certFile), key: await readFile(config.apiTls.keyFile) } }),
  })
  await api.register(opsRoutes({ metrics, notReady: () => readiness.reason(), status }))
  const preheater = new Preheater({
    origin,
    puller,
    upstreamFor,
    defaultRegistry: defaultUpstream.registry,
    manifests: stores.manifests,
    log: log.child({ component: 'preheat' }),
    ...preheatWiring(node, client, config.bootstrap, retention, log),
  })
  late.preheater = preheater
  const apiToken = config.apiTokenFile === undefined ? undefined : await readToken(config.apiTokenFile, 'API')
  await api.register(preheatRoutes(preheater, apiToken === undefined ? undefined : bearerGuard(apiToken)))
  if (config.webhookTokenFile !== undefined) {
    const token = await readToken(config.webhookTokenFile, 'webhook')
    await api.register(
      notificationRoutes({
        token,
        repositories: config.notifyRepositories,
        preheat: (image) => void preheater.submit(image),
        // Only a host the reference grammar reads as a registry, and one this seeder pulls from.
        knownRegistry: (h) => (/[.:]/.test(h) || h === 'localhost') && upstreamFor(h.toLowerCase()) !== undefined,
        log: log.child({ component: 'notifications' }),
      }),
    )
  }
  await api.listen({ host: config.apiListen.host, port: config.apiListen.port })
  const addr = api.server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : config.apiListen.port
  const apiUrl = `${config.apiTls === undefined ? 'http' : 'https'}://${config.apiListen.host.includes(':') ? `[${config.apiListen.host}]` : config.apiListen.host}:${port}`
  log.info({ peerId, multiaddrs, api: apiUrl, origin: config.origin.href }, 'seeder ready')
  return {
    peerId,
    multiaddrs,
    apiUrl,
    node,
    metrics,
    puller,
    preheater,
    retention,
    stop: stopList([
      () => seeding.stop(),
      () => preheater.stop(),
      // Pulls under way are cut before the store stops under them; their partials resume at the next start.
      () => puller.stop(),
      () => api.close(),
      () => server.stop(),
      () => manifestServer.stop(),
      () => node.stop(),
      () => origin.stop(),
      () => retention.stop(),
      () => stores.stop(),
    ]),
  }
}

/** `shoal seeder …`: reads flags, SHOAL_* and the config file, runs until SIGTERM/SIGINT. */
export function seederMain(argv: ConfigSources['argv'], env: NodeJS.ProcessEnv): Promise<number> {
  return runService('seeder', argv, env, loadSeederConfig, (config) => startSeeder(config))
}

async function readToken(file: string, what: string): Promise<string> {
  const token = (await readFile(file, 'utf8')).trim()
  if (token === '') throw new Error(`${what} token file ${file} is empty`)
  return token
}

/** Rendezvous ownership among seeders, retention of what a preheat seeded, and the agents a preheat may ask. */
function preheatWiring(
  node: P2PNode,
  client: ChunkClient,
  bootstrap: readonly string[],
  retention: Retention,
  log: Logger,
) {
  const others = seedersFromBootstrap(bootstrap).filter((s) => s.id !== node.peerId.toString())
  const seederIds = new Set(others.map((s) => s.id))
  return {
    ...(others.length > 0 ? { owner: rendezvousOwners(node.peerId.toString(), others, client) } : {}),
    onSeeded: (digest: Digest) => retention.keep(digest),
    prefetch: agentPrefetcher({
      client,
      candidates: () => node.getPeers().filter((p) => !seederIds.has(p.toString())),
      siteOf: agentSiteOf(node),
      log: log.child({ component: 'prefetch' }),
    }),
  }
}
