import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { ConfigError } from '../shared/config/index.ts'
import { createLogger, type Logger } from '../shared/log/index.ts'
import { createMetrics } from '../shared/metrics/index.ts'
import { type Credential, OriginClient } from '../shared/origin/index.ts'
import { TokenBucket, throttled } from '../shared/rate/index.ts'
import { openFsStore } from '../shared/store/index.ts'
import { buildApp } from './app.ts'
import { Authorizer } from './authz.ts'
import { Downloads } from './blobs/download.ts'
import { fetchFromOrigin } from './blobs/origin-fetch.ts'
import { BlobService } from './blobs/service.ts'
import { type AgentConfig, loadAgentConfig } from './config.ts'
import { ManifestService } from './registry/manifests.ts'

export interface RunningAgent {
  readonly url: string
  readonly config: AgentConfig
  readonly metrics: ReturnType<typeof createMetrics>
  close(): Promise<void>
}

/** Wires one agent from a validated config and starts listening. */
export async function startAgent(config: AgentConfig, opts: { log?: Logger } = {}): Promise<RunningAgent> {
  const log = opts.log ?? createLogger({ level: config.logLevel, name: 'agent' })
  await mkdir(config.data, { recursive: true })
  const metrics = createMetrics()
  const stores = await openFsStore({ dir: config.data, maxBytes: config.cacheMaxBytes })
  const origin = new OriginClient({ credentials: credentialsOf(config), onBytes: () => {} })
  const isPublic = (registry: string) => config.registries.get(registry)?.public === true
  const authorizer = new Authorizer({ origin, ttlMs: config.authTtlMs, staleTtlMs: config.staleAuthTtlMs, isPublic })
  const downloads = new Downloads()
  const originBucket = config.originRate > 0 ? new TokenBucket({ bytesPerSecond: config.originRate }) : undefined
  const blobs = new BlobService({
    store: stores.blobs,
    origin,
    authorizer,
    downloads,
    metrics,
    log: log.child({ component: 'blobs' }),
    fill: (dl, req) =>
      fetchFromOrigin(dl, {
        origin,
        store: stores.blobs,
        authorizer,
        metrics,
        chunkSize: config.chunkSize,
        upstream: req.upstream,
        name: req.name,
        digest: req.digest,
        authorization: req.authorization,
        ...(originBucket === undefined ? {} : { throttle: (body) => throttled(body, originBucket) }),
      }),
  })
  const manifests = new ManifestService({
    origin,
    cache: stores.manifests,
    authorizer,
    metrics,
    log: log.child({ component: 'manifests' }),
    tagTtlMs: config.tagTtlMs,
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
    ready: () => true,
    status: () => ({
      role: 'agent',
      cache: stores.blobs.usage(),
      downloads: downloads.list().map((d) => ({ digest: d.digest, state: d.state, size: d.knownSize })),
    }),
  })
  await app.listen({ host: config.listen.host, port: config.listen.port })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : config.listen.port
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host
  const url = `http://${host}:${port}`
  log.info({ url, origin: config.origin.href, data: config.data }, 'agent listening')
  return {
    url,
    config,
    metrics,
    async close() {
      await app.close()
      await origin.close()
      await stores.close()
    },
  }
}

function credentialsOf(config: AgentConfig): ReadonlyMap<string, Credential> {
  const out = new Map<string, Credential>()
  for (const [registry, s] of config.registries) {
    if (s.username !== undefined && s.password !== undefined) {
      out.set(registry, { kind: 'basic', username: s.username, password: s.password })
    } else if (s.token !== undefined) {
      out.set(registry, { kind: 'bearer', token: s.token })
    }
  }
  return out
}

/** `shoal agent …`: reads flags, SHOAL_* and the config file, runs until SIGTERM/SIGINT. */
export async function agentMain(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config: AgentConfig
  try {
    config = loadAgentConfig({ argv, env, readFile: (p) => readFileSync(p, 'utf8') })
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`shoal agent: ${err.message}\n`)
      return 2
    }
    throw err
  }
  const agent = await startAgent(config)
  await waitForSignal()
  await agent.close()
  return 0
}

/** Resolves on the first SIGTERM or SIGINT; the caller drains and exits 0. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', on)
      process.off('SIGINT', on)
      resolve(sig)
    }
    process.on('SIGTERM', on)
    process.on('SIGINT', on)
  })
}
