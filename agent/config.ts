import { DEFAULT_CHUNK_SIZE_BYTES } from '../shared/chunks/index.ts'
import { SITE_CONFIG_OPTIONS, siteOf } from '../shared/config/index.ts'
import { ConfigError, type ConfigSources, loadConfig, type OptionSpec } from '../shared/config/index.ts'
import { defaultBulkListen, type HostPort } from '../shared/swarm/bulk/index.ts'
import { parseSeederAddr } from '../shared/swarm/index.ts'
import { DEFAULT_AGENT_UPLOAD_SLOTS } from '../shared/swarm/protocol/index.ts'

/** Every agent option: flag, SHOAL_* variable and YAML key share one name. */
export const AGENT_OPTIONS = {
  listen: {
    type: 'hostport',
    flag: 'listen',
    default: '127.0.0.1:5000',
    describe: 'HTTP listen address of the /v2/ mirror',
  },
  metricsListen: {
    type: 'hostport',
    flag: 'metrics-listen',
    describe: 'HTTP address of /metrics, /healthz, /readyz, /status and the status page /ui (default: off)',
  },
  origin: {
    type: 'url',
    flag: 'origin',
    default: new URL('https://registry-1.docker.io'),
    describe: 'default upstream registry (may carry a path prefix)',
  },
  data: {
    type: 'string',
    flag: 'data',
    default: '/var/lib/shoal',
    describe: 'data directory (cache, index, identity)',
  },
  insecureRegistries: {
    type: 'list',
    flag: 'insecure-registry',
    default: [],
    describe: 'HOST:PORT reached over plain http (repeatable)',
  },
  cacheMaxBytes: {
    type: 'bytes',
    flag: 'cache-max-bytes',
    default: 20 * 1024 ** 3,
    describe: 'blob cache quota, LRU eviction (0 = none)',
  },
  tagTtl: {
    type: 'duration',
    flag: 'tag-ttl',
    default: 5000,
    describe: 'how long a tag resolved at the origin is reused',
  },
  authTtl: {
    type: 'duration',
    flag: 'auth-ttl',
    default: 60_000,
    describe: 'how long an origin read authorization is reused',
  },
  staleAuthTtl: {
    type: 'duration',
    flag: 'stale-auth-ttl',
    default: 24 * 3_600_000,
    describe: 'while the origin is down, reuse a read authorization this old',
  },
  readOnly: {
    type: 'bool',
    flag: 'read-only',
    default: false,
    describe: 'refuse pushes and deletes instead of passing them through',
  },
  chunkSize: {
    type: 'bytes',
    flag: 'chunk-size',
    default: DEFAULT_CHUNK_SIZE_BYTES,
    describe: 'chunk size of blobs this agent cuts',
  },
  originRate: { type: 'rate', flag: 'origin-rate', default: 0, describe: 'cap on origin download bytes/s (0 = none)' },
  ...SITE_CONFIG_OPTIONS,
  preheatTtl: {
    type: 'duration',
    flag: 'preheat-ttl',
    default: 24 * 3_600_000,
    describe: "a site's preheated copy (a seeder's preheat with scope.sites) is pinned this long; 0 = hold none",
  },
  logLevel: { type: 'string', flag: 'log-level', default: 'info', describe: 'trace, debug, info, warn, error' },
  p2pListen: {
    type: 'list',
    flag: 'p2p-listen',
    default: [],
    describe: 'libp2p listen multiaddrs; the swarm is off when none is given',
  },
  p2pAnnounce: { type: 'list', flag: 'p2p-announce', default: [], describe: 'multiaddrs to announce instead' },
  seeders: { type: 'list', flag: 'seeder', default: [], describe: 'trusted seeder /ip4/…/tcp/…/p2p/<id> (repeatable)' },
  bootstrap: {
    type: 'list',
    flag: 'bootstrap',
    default: [],
    describe: 'more DHT bootstrap peers: MULTIADDR or dns:NAME[:PORT]',
  },
  identity: {
    type: 'string',
    flag: 'identity',
    describe: "node identity file (from `shoal keygen identity`); wins over the data dir's own key",
  },
  swarmKey: {
    type: 'string',
    flag: 'swarm-key',
    describe: 'pre-shared swarm key file: only nodes holding it can connect',
  },
  trustPeerMaps: {
    type: 'bool',
    flag: 'trust-peer-maps',
    default: false,
    describe: 'with no seeder answering, share blobs on chunk proofs signed by peers (on by itself with --swarm-key)',
  },
  bulkListen: {
    type: 'hostport',
    flag: 'bulk-listen',
    describe: 'HTTPS listen address of the bulk chunk path (default: host of the first --p2p-listen, any port)',
  },
  noBulk: {
    type: 'bool',
    flag: 'no-bulk',
    default: false,
    describe: 'move chunk bytes over libp2p streams only: no bulk HTTPS port, none used',
  },
  uploadRate: {
    type: 'rate',
    flag: 'upload-rate',
    default: 0,
    describe: 'cap on chunk upload to peers, bytes/s (0 = none)',
  },
  uploadSlots: {
    type: 'int',
    flag: 'upload-slots',
    default: DEFAULT_AGENT_UPLOAD_SLOTS,
    min: 1,
    max: 64,
    describe: 'chunk uploads served to peers at once (more get "busy" and ask elsewhere)',
  },
  downloadRate: {
    type: 'rate',
    flag: 'download-rate',
    default: 0,
    describe: 'cap on chunk download from peers, bytes/s',
  },
  stallTimeout: {
    type: 'duration',
    flag: 'stall-timeout',
    default: 60_000,
    describe:
      'no byte from the swarm for this long (or no verified chunk for 4 × this long) → the rest comes from the origin',
  },
  reprovideInterval: {
    type: 'duration',
    flag: 'reprovide-interval',
    default: 3_600_000,
    describe: "how often held blobs are re-announced in the DHT (others' records are kept twice as long)",
  },
} as const satisfies Record<string, OptionSpec>

export interface RegistrySettings {
  readonly username?: string
  readonly password?: string
  readonly token?: string
  /** Public registries skip the per-client read authorization of cached blobs. */
  readonly public?: boolean
}

export interface AgentConfig {
  readonly listen: { readonly host: string; readonly port: number }
  /** Where the operations routes listen besides the mirror port (Prometheus, probes); undefined: off. */
  readonly metricsListen: { readonly host: string; readonly port: number } | undefined
  readonly origin: URL
  readonly data: string
  readonly insecureRegistries: readonly string[]
  readonly cacheMaxBytes: number
  readonly tagTtlMs: number
  readonly authTtlMs: number
  readonly staleAuthTtlMs: number
  readonly readOnly: boolean
  readonly chunkSize: number
  readonly originRate: number
  /** `--site`: the edge site this node is in; undefined: no site (one flat swarm). */
  readonly site: string | undefined
  readonly wanUploadRate: number
  /** `--preheat-ttl`: how long a copy held for its site stays pinned; 0 = such copies are refused. */
  readonly preheatTtlMs: number
  readonly wanDownloadRate: number
  readonly logLevel: string
  readonly registries: ReadonlyMap<string, RegistrySettings>
  readonly p2pListen: readonly string[]
  readonly p2pAnnounce: readonly string[]
  readonly seeders: readonly string[]
  readonly bootstrap: readonly string[]
  readonly swarmKeyFile: string | undefined
  /**
   * Peer proofs: when no seeder answers for a blob (none configured, or every one down), the agents elect one of
   * themselves to pull it from the origin and accept the chunk proofs it signs. On with a swarm key (only members
   * can join) or `--trust-peer-maps`; off otherwise, and then an agent with no seeder shares nothing.
   */
  readonly peerProofs: boolean
  /** `--identity`: the node's key from this file instead of `<data>/p2p/identity.key`. */
  readonly identityFile: string | undefined
  /** Where the bulk (HTTPS) chunk path listens; undefined: off (no swarm, or --no-bulk). */
  readonly bulkListen: HostPort | undefined
  readonly uploadRate: number
  readonly uploadSlots: number
  readonly downloadRate: number
  readonly stallTimeoutMs: number
  readonly reprovideIntervalMs: number
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

export function loadAgentConfig(sources: ConfigSources): AgentConfig {
  const { values: v, file } = loadConfig(AGENT_OPTIONS, sources, ['registries'])
  const [host, port] = splitHostPort(v.listen as string)
  const logLevel = v.logLevel as string
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('log-level', `expected one of ${LOG_LEVELS.join(', ')}`)
  const chunkSize = v.chunkSize as number
  if (chunkSize < 64 * 1024 || chunkSize > 64 * 1024 * 1024) throw new ConfigError('chunk-size', 'must be 64KiB..64MiB')
  return Object.freeze({
    listen: Object.freeze({ host, port }),
    metricsListen: hostPortOf(v.metricsListen as string | undefined),
    origin: v.origin as URL,
    data: v.data as string,
    insecureRegistries: v.insecureRegistries as readonly string[],
    cacheMaxBytes: v.cacheMaxBytes as number,
    tagTtlMs: v.tagTtl as number,
    authTtlMs: v.authTtl as number,
    staleAuthTtlMs: v.staleAuthTtl as number,
    readOnly: v.readOnly as boolean,
    chunkSize,
    originRate: v.originRate as number,
    site: siteOf(v.site as string | undefined),
    wanUploadRate: v.wanUploadRate as number,
    preheatTtlMs: v.preheatTtl as number,
    wanDownloadRate: v.wanDownloadRate as number,
    logLevel,
    registries: parseRegistries(file['registries']),
    p2pListen: v.p2pListen as readonly string[],
    p2pAnnounce: v.p2pAnnounce as readonly string[],
    seeders: parseSeeders(v.seeders as readonly string[]),
    bootstrap: v.bootstrap as readonly string[],
    swarmKeyFile: v.swarmKey as string | undefined,
    peerProofs: (v.trustPeerMaps as boolean) || v.swarmKey !== undefined,
    identityFile: v.identity as string | undefined,
    bulkListen: bulkListenOf(v.bulkListen as string | undefined, v.noBulk as boolean, v.p2pListen as readonly string[]),
    uploadRate: v.uploadRate as number,
    uploadSlots: v.uploadSlots as number,
    downloadRate: v.downloadRate as number,
    stallTimeoutMs: v.stallTimeout as number,
    reprovideIntervalMs: reprovideInterval(v.reprovideInterval as number),
  })
}

/** Explicit, else next to the first p2p listen address; nothing when the swarm or the bulk path is off. */
function bulkListenOf(explicit: string | undefined, off: boolean, p2pListen: readonly string[]): HostPort | undefined {
  if (off || p2pListen.length === 0) return undefined
  if (explicit === undefined) return defaultBulkListen(p2pListen)
  const [host, port] = splitHostPort(explicit)
  return Object.freeze({ host, port })
}

function hostPortOf(value: string | undefined): { readonly host: string; readonly port: number } | undefined {
  if (value === undefined) return undefined
  const [host, port] = splitHostPort(value)
  return Object.freeze({ host, port })
}

export function splitHostPort(value: string): [string, number] {
  const i = value.lastIndexOf(':')
  return [value.slice(0, i).replace(/^\[|\]$/g, ''), Number(value.slice(i + 1))]
}

function parseRegistries(raw: unknown): ReadonlyMap<string, RegistrySettings> {
  const out = new Map<string, RegistrySettings>()
  if (raw === undefined || raw === null) return out
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError('registries', 'expected a mapping of registry host to settings')
  for (const [host, settings] of Object.entries(raw as Record<string, unknown>)) {
    const key = `registries.${host}`
    if (typeof settings !== 'object' || settings === null) throw new ConfigError(key, 'expected a mapping')
    const s = settings as Record<string, unknown>
    for (const k of Object.keys(s)) {
      if (!['username', 'password', 'token', 'public'].includes(k)) throw new ConfigError(`${key}.${k}`, 'unknown key')
    }
    for (const k of ['username', 'password', 'token'] as const) {
      if (s[k] !== undefined && typeof s[k] !== 'string') throw new ConfigError(`${key}.${k}`, 'expected a string')
    }
    if (s['public'] !== undefined && typeof s['public'] !== 'boolean')
      throw new ConfigError(`${key}.public`, 'expected true or false')
    if ((s['username'] === undefined) !== (s['password'] === undefined)) {
      throw new ConfigError(key, 'username and password go together')
    }
    out.set(
      host === 'docker.io' || host === 'index.docker.io' ? 'docker.io' : host,
      Object.freeze({ ...s }) as RegistrySettings,
    )
  }
  return out
}

/** A trusted seeder must name its peer id: that key is what signs the chunk maps agents accept. */
function parseSeeders(list: readonly string[]): readonly string[] {
  for (const s of list) {
    if (parseSeederAddr(s) === undefined) {
      throw new ConfigError('seeder', `expected /ip4/HOST/tcp/PORT/p2p/PEERID, got ${JSON.stringify(s)}`)
    }
  }
  return list
}

/** Below a second the DHT would spend its time re-providing; tests use a second. */
function reprovideInterval(ms: number): number {
  if (ms < 1000) throw new ConfigError('reprovide-interval', 'must be at least 1s')
  return ms
}
