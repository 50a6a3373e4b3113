import { yamux } from '@chainsafe/libp2p-yamux'
import { type Identify, identify } from '@libp2p/identify'
import {
  type ConnectionEncrypter,
  type Libp2p,
  type PeerId,
  type PeerInfo,
  peerDiscoverySymbol,
  type PrivateKey,
} from '@libp2p/interface'
import { type KadDHT, kadDHT } from '@libp2p/kad-dht'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { type Ping, ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { type Bootstrap, bootstrapService, type HostResolver, parseBootstrapEntry } from './bootstrap.ts'
import { DEFAULT_REPROVIDE_INTERVAL_MS, DHT_INITIAL_SELF_QUERY_DELAY_MS, DHT_PROTOCOL } from './constants.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { parseSwarmKey } from './swarm-key.ts'
import { userAgentFor } from './site.ts'
import { installPnetWindow } from './pnet-window.ts'
import { reusedCertificateTls } from './tls.ts'
import { lazyNoise } from './lazy-noise.ts'
import { quietLogger } from './logger.ts'
import { cachePeerStore, type PeerStoreCacheStats } from './peer-store-cache.ts'

export type EncrypterName = 'tls' | 'noise'

/**
 * TLS first, Noise as fallback. Measured with bench/transport (one stream, 512 MiB over loopback, two
 * processes): TLS moves roughly twice what Noise does, because Node's TLS seals records in OpenSSL while Noise
 * seals each <=64 KiB frame in JS/WASM. Both are authenticated by the libp2p identity key.
 */
export const DEFAULT_ENCRYPTERS: readonly EncrypterName[] = ['tls', 'noise']

/**
 * libp2p connection manager limits, set here rather than left to libp2p's defaults (300 connections, 10 inbound
 * upgrades at once), which fit neither end of a large rollout. Beyond maxConnections libp2p prunes connections,
 * the ones carrying `have` long polls and chunk streams included.
 */
export interface ConnectionLimits {
  readonly maxConnections: number
  /** Inbound connections still in their upgrade (pnet, TLS, muxer) at once; more are refused. */
  readonly maxIncomingPendingConnections: number
  /**
   * Inbound connections accepted from one IP address per second; more are refused. libp2p's default, 5, counts an
   * edge site's whole NAT as one host: the nodes of a site starting a rollout together would be turned away by a
   * seeder or agent outside it, and retry only after their dial backoff.
   */
  readonly inboundConnectionThreshold: number
}

/**
 * An agent: per blob under way it follows at most MAX_TRACKED_PEERS (40) peers and is followed by about as many,
 * and a runtime pulls up to ~6 layers at once: ~500 connections; DHT queries add a few dozen short ones. The peer
 * state behind them is bounded the same way (shared/swarm/have-tracker.ts, agent/swarm/lookups.ts), so the
 * connections of a 10,000-node fleet cost an agent what those of a 100-node one do. At a rollout's start the
 * first holders of a chunk are dialled by many agents at once: 64 upgrades in parallel instead of 10.
 */
export const AGENT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 600,
  maxIncomingPendingConnections: 64,
  inboundConnectionThreshold: 64,
}

/**
 * A seeder: every agent of the fleet keeps a connection to it (getMap, the `have` long poll, chunks), so the
 * limit is the fleet size it serves, not a peer count; and all of them dial it when a rollout starts. With libp2p's
 * default of 300, a seeder of a 1,000-node fleet would prune agents' long polls in a loop.
 */
export const SEEDER_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 20_000,
  maxIncomingPendingConnections: 256,
  inboundConnectionThreshold: 1_024,
}

export interface P2PNodeOptions {
  /** The identity key is persisted at `<dataDir>/p2p/identity.key` (created 0600 on first start). */
  readonly dataDir: string
  /** The identity to use instead of the data dir's key (`--identity FILE`, see `resolveIdentity`). */
  readonly privateKey?: PrivateKey
  /** Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/4001`. */
  readonly listen: readonly string[]
  /** Addresses to tell peers instead of the listen addresses (e.g. the pod IP). */
  readonly announce?: readonly string[]
  /** Multiaddrs (normally with `/p2p/<id>`) or `dns:NAME[:PORT]` (every A/AAAA record is a peer). */
  readonly bootstrap?: readonly string[]
  /** pnet key file contents: only nodes holding the same key can connect at all. */
  readonly swarmKey?: Uint8Array
  /** Serve DHT queries and hold provider records (default true). False makes a DHT client only. */
  readonly dhtServer?: boolean
  /** Connection encrypters in order of preference (default DEFAULT_ENCRYPTERS). */
  readonly encrypters?: readonly EncrypterName[]
  /** How often the node re-provides what it provides; also sets how long it keeps others' records (default 1 h). */
  readonly reprovideIntervalMs?: number
  /** Connection manager limits (default AGENT_CONNECTION_LIMITS; a seeder passes SEEDER_CONNECTION_LIMITS). */
  readonly connections?: ConnectionLimits
  /** The node's `--site`, announced in its user agent (see site.ts); none: no site. */
  readonly site?: string
  /** How `dns:` bootstrap names are resolved (default getaddrinfo). */
  readonly resolver?: HostResolver
  readonly signal?: AbortSignal
}

export interface P2PServices extends Record<string, unknown> {
  readonly identify: Identify
  readonly ping: Ping
  readonly dht: KadDHT
  readonly bootstrap: Bootstrap
}

export type P2PNode = Libp2p<P2PServices>

type EncrypterFactory = NonNullable<Parameters<typeof createLibp2p>[0]>['connectionEncrypters']

const ENCRYPTERS: Readonly<Record<EncrypterName, () => (components: never) => ConnectionEncrypter>> = {
  tls: () => reusedCertificateTls(),
  noise: () => lazyNoise(),
}

/**
 * kad-dht's reprovider, set to re-provide every `intervalMs`: it looks at its records every quarter interval,
 * re-provides its own once they are an interval old, and drops other nodes' records after two intervals (a
 * record its owner stopped re-providing, because it evicted the blob, does not outlive that).
 */
export function reprovideSchedule(intervalMs: number): { interval: number; threshold: number; validity: number } {
  if (!(intervalMs >= 4)) throw new RangeError(`reprovide interval must be at least 4 ms, got ${intervalMs}`)
  return { interval: Math.floor(intervalMs / 4), threshold: intervalMs, validity: 2 * intervalMs }
}

/**
 * What kad-dht may add to its routing table: every peer with every address it gave (swarms live on cluster
 * networks and loopback, where kad-dht's default mapper would strip every usable address), except this node itself.
 * Answers to this node's own queries name it among the closer peers; kad-dht then queues it for its routing table,
 * pings it first, and the ping fails ("Can not dial self"), again at every answer: in a 6-agent fleet run that was
 * 793 of the agents' 829 routing-table pings. A peer with no address is not added, so this node gets none.
 */
export function routingTableMapper(self: PeerId): (info: PeerInfo) => PeerInfo {
  return (info) => (info.id.equals(self) ? { ...info, multiaddrs: [] } : info)
}

/** A peer the DHT names again with the same addresses is passed on to the peer store at most this often. */
export const DHT_DISCOVERY_REPEAT_MS = 30_000

/**
 * The DHT as libp2p's peer discovery, quieter: kad-dht announces every peer each DHT answer names (its closer
 * peers and providers, the same few again and again in a swarm), and libp2p merges each announcement into the
 * peer store, a locked load, decode, compare, encode and save per peer per answer (the peer store was ~11 % of a
 * fleet agent's CPU during a rollout, bench/RESULTS.md). This passes a peer on when its addresses changed or
 * `repeatMs` has passed since it last was, so the peer store still learns every new peer and address at once.
 * Everything else of the service is the service itself.
 */
export function quietDiscovery<C, T extends object>(
  factory: (components: C) => T,
  repeatMs = DHT_DISCOVERY_REPEAT_MS,
  now: () => number = Date.now,
): (components: C) => T {
  return (components) => {
    const service = factory(components)
    const source = (service as Partial<Record<typeof peerDiscoverySymbol, EventTarget>>)[peerDiscoverySymbol]
    if (source === undefined) return service
    const quiet = new EventTarget()
    const last = new Map<string, { addrs: string; at: number }>()
    source.addEventListener('peer', (evt) => {
      const info = (evt as CustomEvent<PeerInfo>).detail
      const key = info.id.toString()
      const addrs = info.multiaddrs
        .map((a) => a.toString())
        .sort()
        .join(' ')
      const t = now()
      const seen = last.get(key)
      if (seen !== undefined && seen.addrs === addrs && t - seen.at < repeatMs) return
      if (last.size >= 4096) last.clear() // a bound, not a cache policy: the next answers fill it again
      last.set(key, { addrs, at: t })
      quiet.dispatchEvent(new CustomEvent('peer', { detail: info }))
    })
    return new Proxy(service, {
      get(target, prop) {
        if (prop === peerDiscoverySymbol) return quiet
        const v: unknown = Reflect.get(target, prop, target)
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
  }
}

const peerStoreStats = new WeakMap<P2PNode, PeerStoreCacheStats>()

/** How the node's peer store cache answered so far (see peer-store-cache.ts); undefined for a node not made here. */
export function peerStoreCacheStats(node: P2PNode): Readonly<PeerStoreCacheStats> | undefined {
  return peerStoreStats.get(node)
}

/** Creates and starts the swarm node shared by agent and seeder. Stop it with `node.stop()`. */
export async function createP2PNode(opts: P2PNodeOptions): Promise<P2PNode> {
  opts.signal?.throwIfAborted()
  // Parse everything first so a bad config fails before any socket is opened.
  const entries = (opts.bootstrap ?? []).map(parseBootstrapEntry)
  const psk = opts.swarmKey === undefined ? undefined : parseSwarmKey(opts.swarmKey)
  if (psk !== undefined) installPnetWindow()
  const privateKey = opts.privateKey ?? (await loadOrCreateIdentity(opts.dataDir, { signal: opts.signal }))
  const encrypters = (opts.encrypters ?? DEFAULT_ENCRYPTERS).map((n) => ENCRYPTERS[n]()) as EncrypterFactory

  const node = await createLibp2p({
    privateKey,
    start: false,
    nodeInfo: { userAgent: userAgentFor(opts.site) },
    logger: quietLogger(),
    addresses: { listen: [...opts.listen], announce: opts.announce === undefined ? [] : [...opts.announce] },
    transports: [tcp()],
    connectionEncrypters: encrypters,
    streamMuxers: [yamux()],
    connectionManager: { ...(opts.connections ?? AGENT_CONNECTION_LIMITS) },
    ...(psk === undefined ? {} : { connectionProtector: preSharedKey({ psk }) }),
    services: {
      identify: identify(),
      // kad-dht 16 requires the ping service (it pings contacts before evicting them).
      ping: ping(),
      dht: quietDiscovery(
        kadDHT({
          protocol: DHT_PROTOCOL,
          clientMode: opts.dhtServer === false,
          peerInfoMapper: routingTableMapper(peerIdFromPrivateKey(privateKey)),
          // Queries wait for the first self-query, which kad-dht delays by 1 s by default; an agent that starts
          // because a pod needs an image should not pay that. The self-query still waits for a first peer.
          initialQuerySelfInterval: DHT_INITIAL_SELF_QUERY_DELAY_MS,
          reprovide: reprovideSchedule(opts.reprovideIntervalMs ?? DEFAULT_REPROVIDE_INTERVAL_MS),
        }),
      ),
      bootstrap: bootstrapService({ entries, resolver: opts.resolver }),
    },
  })
  peerStoreStats.set(node, cachePeerStore(node.peerStore))
  try {
    await node.start()
    opts.signal?.throwIfAborted()
  } catch (err) {
    await node.stop()
    throw err
  }
  return node
}
