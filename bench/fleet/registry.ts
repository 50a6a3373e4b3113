import { randomBytes } from 'node:crypto'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import type { Fleet } from './fleet.ts'
import type { HostPlan } from './netns.ts'
import { Daemon } from '../../harness/daemon.ts'
import { FLEET_DAEMON } from './proc.ts'

export const REGISTRY_PORT = 5000

export interface RegistryOptions {
  /** `ip:port` to listen on. */
  readonly addr: string
  readonly dataDir: string
  /** Makes it distribution's pull-through cache of this registry URL. */
  readonly proxyRemoteUrl?: string
}

/** distribution 2.8's config for a plain registry or a pull-through cache. */
export function registryConfig(opts: RegistryOptions): Record<string, unknown> {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'json', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: opts.dataDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: opts.addr, secret: randomBytes(16).toString('hex') },
  }
  if (opts.proxyRemoteUrl !== undefined) config['proxy'] = { remoteurl: opts.proxyRemoteUrl }
  return config
}

export interface BenchRegistry {
  /** `169.254.1.1:5000` */
  readonly host: string
  readonly url: string
  readonly daemon: Daemon
  stop(): Promise<void>
}

/** Starts Debian's `docker-registry` inside `host`'s namespace; `dir` holds its config, storage and log. */
export async function startRegistry(
  fleet: Fleet,
  host: HostPlan,
  dir: string,
  opts: { proxyRemoteUrl?: string; signal?: AbortSignal } = {},
): Promise<BenchRegistry> {
  await mkdir(dir, { recursive: true })
  const addr = `${host.addr}:${REGISTRY_PORT}`
  const dataDir = join(dir, 'data')
  const configPath = join(dir, 'config.yml')
  const config = registryConfig({
    addr,
    dataDir,
    ...(opts.proxyRemoteUrl === undefined ? {} : { proxyRemoteUrl: opts.proxyRemoteUrl }),
  })
  await writeFile(configPath, stringify(config), { mode: 0o600 })
  // A clean environment: REGISTRY_* variables would override the config file.
  const exec = fleet.exec(host, 'docker-registry', ['serve', configPath])
  const daemon = new Daemon(`registry@${host.name}`, exec.cmd, exec.args, {
    ...FLEET_DAEMON,
    logFile: join(dir, 'registry.log'),
    env: {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: dir,
    },
  })
  try {
    // distribution logs this right after it has bound the socket.
    await daemon.waitForLine((l) => (l.includes(`listening on ${addr}`) ? true : undefined), {
      timeoutMs: 30_000,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    })
  } catch (err) {
    await daemon.stop('SIGTERM', 1_000)
    throw err
  }
  return {
    host: addr,
    url: `http://${addr}`,
    daemon,
    async stop() {
      await daemon.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}
