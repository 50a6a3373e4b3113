import { randomBytes, randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { Daemon } from '../daemon.ts'
import { removeDir, runOk, tempDir } from './process.ts'

export type RegistryAuth = 'none' | 'htpasswd' | 'token'

export interface RegistryUser {
  readonly username: string
  readonly password: string
}

/** What distribution's `auth: token` needs to know about the token server (a TokenServer provides it). */
export interface TokenIssuer {
  readonly realm: string
  readonly service: string
  readonly issuer: string
  readonly rootCertBundle: string
}

export interface StartRegistryOptions {
  readonly auth?: RegistryAuth
  /** Accounts of an `htpasswd` registry. */
  readonly users?: readonly RegistryUser[]
  /** Required for `auth: 'token'`. */
  readonly token?: TokenIssuer
  /** Registry webhook: distribution POSTs event envelopes here with `Authorization: Bearer <token>`. */
  readonly notifications?: { readonly url: string; readonly token: string }
  /** Turns this registry into distribution's own pull-through cache of `remoteurl`. */
  readonly proxy?: { readonly remoteurl: string; readonly username?: string; readonly password?: string }
  readonly signal?: AbortSignal
}

/** One request as the registry itself logged it. */
export interface AccessEntry {
  readonly method: string
  readonly uri: string
  readonly path: string
  readonly status: number
  readonly written: number
  readonly userAgent: string
}

export interface BlobGets {
  /** GET responses for blobs with status 200 or 206. */
  readonly count: number
  /** Body bytes the registry wrote for those responses. */
  readonly bytes: number
}

export interface Registry {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** `127.0.0.1:PORT`, the registry part of an image reference. */
  readonly host: string
  readonly dataDir: string
  readonly daemon: Daemon
  /** Completed requests, in log order, after making sure everything served so far has been logged. */
  requests(opts?: { signal?: AbortSignal }): Promise<readonly AccessEntry[]>
  /** Blob GETs the registry served (for one digest or all), counted from its own log. */
  blobGets(digest?: string, opts?: { signal?: AbortSignal }): Promise<BlobGets>
  /** Forgets the requests logged so far, so a later count covers only what follows. */
  resetLog(opts?: { signal?: AbortSignal }): Promise<void>
  stop(): Promise<void>
}

const BLOB_PATH = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/

function parseEntry(line: string): (AccessEntry & { msg: string }) | undefined {
  if (!line.startsWith('{')) return undefined
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
  } catch {
    return undefined
  }
  const uri = record['http.request.uri']
  const method = record['http.request.method']
  if (typeof uri !== 'string' || typeof method !== 'string') return undefined
  const status = record['http.response.status']
  const written = record['http.response.written']
  const userAgent = record['http.request.useragent']
  const msg = record['msg']
  const q = uri.indexOf('?')
  return {
    method,
    uri,
    path: q === -1 ? uri : uri.slice(0, q),
    status: typeof status === 'number' ? status : 0,
    written: typeof written === 'number' ? written : 0,
    userAgent: typeof userAgent === 'string' ? userAgent : '',
    msg: typeof msg === 'string' ? msg : '',
  }
}

async function htpasswdFile(dir: string, users: readonly RegistryUser[]): Promise<string> {
  const lines: string[] = []
  for (const user of users) {
    // -i reads the password from stdin so it never shows up in a process listing
    const { stdout } = await runOk('htpasswd', ['-niB', user.username], { input: `${user.password}\n` })
    lines.push(stdout.trim())
  }
  const path = join(dir, 'htpasswd')
  await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 })
  return path
}

/**
 * Starts Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with filesystem storage in a temp
 * dir. Its JSON log is the ground truth for what the origin served.
 */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<Registry> {
  const dir = await tempDir('registry')
  const dataDir = join(dir, 'data')
  const auth = opts.auth ?? 'none'
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'json', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: dataDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    // Port 0: the registry logs the address it really got, so no port race.
    http: { addr: '127.0.0.1:0', secret: randomBytes(16).toString('hex') },
  }
  if (auth === 'htpasswd') {
    if (opts.users === undefined || opts.users.length === 0) throw new Error('auth htpasswd needs users')
    config['auth'] = { htpasswd: { realm: 'shoal-e2e', path: await htpasswdFile(dir, opts.users) } }
  } else if (auth === 'token') {
    if (opts.token === undefined) throw new Error('auth token needs a token issuer')
    const { realm, service, issuer, rootCertBundle } = opts.token
    config['auth'] = { token: { realm, service, issuer, rootcertbundle: rootCertBundle } }
  }
  if (opts.notifications !== undefined) {
    config['notifications'] = {
      endpoints: [
        {
          name: 'shoal-e2e',
          url: opts.notifications.url,
          headers: { Authorization: [`Bearer ${opts.notifications.token}`] },
          timeout: '2s',
          threshold: 5,
          backoff: '1s',
        },
      ],
    }
  }
  if (opts.proxy !== undefined) config['proxy'] = { ...opts.proxy }
  const configPath = join(dir, 'config.yml')
  await writeFile(configPath, stringify(config), { mode: 0o600 })

  // A clean environment: REGISTRY_* variables would override the config file.
  const daemon = new Daemon('docker-registry', 'docker-registry', ['serve', configPath], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir },
  })
  let host: string
  try {
    host = await daemon.waitForLine(
      (line) => /"msg":"listening on (127\.0\.0\.1:\d+)"/.exec(line)?.[1],
      opts.signal === undefined ? {} : { signal: opts.signal },
    )
  } catch (err) {
    await daemon.stop('SIGKILL')
    await removeDir(dir)
    throw err
  }
  const url = `http://${host}`

  // Entries are collected from the first line on; `flush` makes sure the registry has logged
  // every response it completed before the caller looks (the log line trails the last body byte).
  let entries: AccessEntry[] = []
  let sentinels = 0
  const flush = async (signal?: AbortSignal): Promise<void> => {
    const marker = `e2e-sentinel=${randomUUID()}-${++sentinels}`
    const seen = daemon.waitForLine(
      (line) => (line.includes(marker) ? true : undefined),
      signal === undefined ? {} : { signal },
    )
    // Unauthenticated on purpose: with auth on, the registry still logs the refused request.
    const res = await fetch(`${url}/v2/?${marker}`, signal === undefined ? {} : { signal })
    await res.body?.cancel()
    await seen
  }
  daemon.onLine((line) => {
    const entry = parseEntry(line)
    if (entry === undefined || entry.uri.includes('e2e-sentinel=')) return
    const { msg, ...access } = entry
    if (msg !== 'response completed' && msg !== 'response completed with error') return
    entries.push(access)
  })

  return {
    url,
    host,
    dataDir,
    daemon,
    async requests(o = {}) {
      await flush(o.signal)
      return [...entries]
    },
    async blobGets(digest, o = {}) {
      await flush(o.signal)
      let count = 0
      let bytes = 0
      for (const e of entries) {
        if (e.method !== 'GET' || (e.status !== 200 && e.status !== 206)) continue
        const m = BLOB_PATH.exec(e.path)
        if (m === null || (digest !== undefined && m[1] !== digest)) continue
        count++
        bytes += e.written
      }
      return { count, bytes }
    },
    async resetLog(o = {}) {
      await flush(o.signal)
      entries = []
    },
    async stop() {
      await daemon.stop()
      await removeDir(dir)
    },
  }
}
