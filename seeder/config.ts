import { DEFAULT_CHUNK_SIZE_BYTES } from '../shared/chunks/index.ts'
import { SITE_CONFIG_OPTIONS, siteOf } from '../shared/config/index.ts'
import { ConfigError, type ConfigSources, loadConfig, type OptionSpec } from '../shared/config/index.ts'
import { defaultBulkListen, type HostPort } from '../shared/swarm/bulk/index.ts'

export const SEEDER_OPTIONS = {
  origin: {
    type: 'url',
    flag: 'origin',
    default: new URL('https://registry-1.docker.io'),
    describe: 'origin registry to seed from',
  },
  data: { type: 'string', flag: 'data', default: '/var/lib/shoal-seeder', describe: 'data directory' },
  p2pListen: {
    type: 'list',
    flag: 'p2p-listen',
    default: ['/ip4/0.0.0.0/tcp/4001'],
    describe: 'libp2p listen multiaddrs',
  },
  p2pAnnounce: { type: 'list', flag: 'p2p-announce', default: [], describe: 'multiaddrs to announce instead' },
  apiListen: {
    type: 'hostport',
    flag: 'api-listen',
    default: '127.0.0.1:7000',
    describe: 'HTTP API: /status, /metrics, preheat',
  },
  apiTokenFile: {
    type: 'string',
    flag: 'api-token-file',
    describe: 'file holding the bearer token the preheat API requires (required when --api-listen is not loopback)',
  },
  apiNoAuth: {
    type: 'bool',
    flag: 'api-no-auth',
    default: false,
    describe: 'serve the preheat API without a token on a non-loopback --api-listen, on purpose',
  },
  apiTlsCert: { type: 'string', flag: 'api-tls-cert', describe: 'PEM certificate (chain) to serve the API over HTTPS' },
  apiTlsKey: { type: 'string', flag: 'api-tls-key', describe: 'PEM private key of --api-tls-cert' },
  bootstrap: { type: 'list', flag: 'bootstrap', default: [], describe: 'other seeders: MULTIADDR or dns:NAME[:PORT]' },
  identity: {
    type: 'string',
    flag: 'identity',
    describe: "node identity file (from `shoal keygen identity`); wins over the data dir's own key",
  },
  swarmKey: { type: 'string', flag: 'swarm-key', describe: 'pre-shared swarm key file (private network)' },
  bulkListen: {
    type: 'hostport',
    flag: 'bulk-listen',
    describe: 'HTTPS listen address of the bulk chunk path (default: host of the first --p2p-listen, any port)',
  },
  noBulk: { type: 'bool', flag: 'no-bulk', default: false, describe: 'serve chunk bytes over libp2p streams only' },
  insecureRegistries: { type: 'list', flag: 'insecure-registry', default: [], describe: 'HOST:PORT reached over http' },
  chunkSize: {
    type: 'bytes',
    flag: 'chunk-size',
    default: DEFAULT_CHUNK_SIZE_BYTES,
    describe: 'chunk size of the swarm',
  },
  cacheMaxBytes: {
    type: 'bytes',
    flag: 'cache-max-bytes',
    default: 100 * 1024 ** 3,
    describe: 'store quota (0 = none)',
  },
  uploadRate: { type: 'rate', flag: 'upload-rate', default: 0, describe: 'cap on chunk upload bytes/s (0 = none)' },
  originRate: { type: 'rate', flag: 'origin-rate', default: 0, describe: 'cap on origin download bytes/s (0 = none)' },
  ...SITE_CONFIG_OPTIONS,
  webhookTokenFile: {
    type: 'string',
    flag: 'webhook-token-file',
    describe: 'file holding the bearer token for POST /api/v1/notifications (endpoint off without it)',
  },
  notifyRepositories: {
    type: 'list',
    flag: 'notify-repositories',
    default: [],
    describe: 'repository patterns (* within a component, ** across) that notifications preheat; none = all',
  },
  preheatTtl: {
    type: 'duration',
    flag: 'preheat-ttl',
    default: 24 * 3_600_000,
    describe: 'preheated blobs are pinned this long (then ordinary LRU content); 0 = not pinned',
  },
  logLevel: { type: 'string', flag: 'log-level', default: 'info', describe: 'trace … error, silent' },
  reprovideInterval: {
    type: 'duration',
    flag: 'reprovide-interval',
    default: 3_600_000,
    describe: "the swarm's DHT re-provide interval: agents' provider records are kept twice as long",
  },
} as const satisfies Record<string, OptionSpec>

export interface SeederConfig {
  readonly origin: URL
  readonly data: string
  readonly p2pListen: readonly string[]
  readonly p2pAnnounce: readonly string[]
  readonly apiListen: { readonly host: string; readonly port: number }
  /** Bearer token file of the preheat API; undefined: the API is open (loopback, or --api-no-auth). */
  readonly apiTokenFile: string | undefined
  /** HTTPS for the API: PEM files, both or neither. */
  readonly apiTls: { readonly certFile: string; readonly keyFile: string } | undefined
  readonly bootstrap: readonly string[]
  readonly swarmKeyFile: string | undefined
  /** `--identity`: the node's key from this file instead of `<data>/p2p/identity.key`. */
  readonly identityFile: string | undefined
  /** Where the bulk (HTTPS) chunk path listens; undefined: off (--no-bulk). */
  readonly bulkListen: HostPort | undefined
  readonly insecureRegistries: readonly string[]
  readonly chunkSize: number
  readonly cacheMaxBytes: number
  readonly uploadRate: number
  readonly originRate: number
  /** `--site`: the edge site this node is in; undefined: no site (one flat swarm). */
  readonly site: string | undefined
  readonly wanUploadRate: number
  readonly wanDownloadRate: number
  readonly webhookTokenFile: string | undefined
  readonly notifyRepositories: readonly string[]
  readonly preheatTtlMs: number
  readonly logLevel: string
  readonly reprovideIntervalMs: number
  readonly credentials: ReadonlyMap<string, { username?: string; password?: string; token?: string }>
}

export function loadSeederConfig(sources: ConfigSources): SeederConfig {
  const { values: v, file } = loadConfig(SEEDER_OPTIONS, sources, ['registries'])
  const api = v.apiListen as string
  const i = api.lastIndexOf(':')
  const chunkSize = v.chunkSize as number
  if (chunkSize < 64 * 1024 || chunkSize > 64 * 1024 * 1024) throw new ConfigError('chunk-size', 'must be 64KiB..64MiB')
  const creds = new Map<string, { username?: string; password?: string; token?: string }>()
  const regs = file['registries']
  if (regs !== undefined && regs !== null) {
    if (typeof regs !== 'object') throw new ConfigError('registries', 'expected a mapping')
    for (const [host, s] of Object.entries(regs as Record<string, Record<string, unknown>>)) {
      if (typeof s !== 'object' || s === null) throw new ConfigError(`registries.${host}`, 'expected a mapping')
      creds.set(host, {
        ...(typeof s['username'] === 'string' ? { username: s['username'] } : {}),
        ...(typeof s['password'] === 'string' ? { password: s['password'] } : {}),
        ...(typeof s['token'] === 'string' ? { token: s['token'] } : {}),
      })
    }
  }
  const apiHost = api.slice(0, i).replace(/^\[|\]$/g, '')
  const apiTokenFile = v.apiTokenFile as string | undefined
  if (apiTokenFile === undefined && v.apiNoAuth !== true && !isLoopback(apiHost)) {
    throw new ConfigError(
      'api-token-file',
      `--api-listen ${api} is reachable from other hosts: give --api-token-file FILE (or --api-no-auth to serve the preheat API to anyone, on purpose)`,
    )
  }
  const certFile = v.apiTlsCert as string | undefined
  const keyFile = v.apiTlsKey as string | undefined
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new ConfigError(
      certFile === undefined ? 'api-tls-cert' : 'api-tls-key',
      'give --api-tls-cert and --api-tls-key together',
    )
  return Object.freeze({
    origin: v.origin as URL,
    data: v.data as string,
    p2pListen: v.p2pListen as readonly string[],
    p2pAnnounce: v.p2pAnnounce as readonly string[],
    apiListen: { host: apiHost, port: Number(api.slice(i + 1)) },
    apiTokenFile,
    apiTls: certFile === undefined || keyFile === undefined ? undefined : Object.freeze({ certFile, keyFile }),
    bootstrap: v.bootstrap as readonly string[],
    swarmKeyFile: v.swarmKey as string | undefined,
    identityFile: v.identity as string | undefined,
    bulkListen: bulkListenOf(v.bulkListen as string | undefined, v.noBulk as boolean, v.p2pListen as readonly string[]),
    insecureRegistries: v.insecureRegistries as readonly string[],
    chunkSize,
    cacheMaxBytes: v.cacheMaxBytes as number,
    uploadRate: v.uploadRate as number,
    originRate: v.originRate as number,
    site: siteOf(v.site as string | undefined),
    wanUploadRate: v.wanUploadRate as number,
    wanDownloadRate: v.wanDownloadRate as number,
    webhookTokenFile: v.webhookTokenFile as string | undefined,
    notifyRepositories: v.notifyRepositories as readonly string[],
    preheatTtlMs: v.preheatTtl as number,
    logLevel: v.logLevel as string,
    reprovideIntervalMs: reprovideInterval(v.reprovideInterval as number),
    credentials: creds,
  })
}

/** Only this host can reach a listener on these: 127.0.0.0/8, ::1, localhost. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** Below a second the DHT would spend its time re-providing; tests use a second. */
function reprovideInterval(ms: number): number {
  if (ms < 1000) throw new ConfigError('reprovide-interval', 'must be at least 1s')
  return ms
}

/** Explicit, else next to the first p2p listen address; nothing with --no-bulk. */
function bulkListenOf(explicit: string | undefined, off: boolean, p2pListen: readonly string[]): HostPort | undefined {
  if (off) return undefined
  if (explicit === undefined) return defaultBulkListen(p2pListen)
  const i = explicit.lastIndexOf(':')
  return Object.freeze({ host: explicit.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(explicit.slice(i + 1)) })
}
