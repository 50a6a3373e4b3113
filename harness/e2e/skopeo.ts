import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Digester } from '../../shared/oci/digest.ts'
import { type RunResult, runOk } from './process.ts'

export interface Credentials {
  readonly username: string
  readonly password: string
}

export interface SkopeoCopyOptions {
  readonly srcCreds?: Credentials
  readonly destCreds?: Credentials
  /** Copy every instance of an index (`--all`). */
  readonly all?: boolean
  /** `os/arch[/variant]` to pick from an index instead of this host's. */
  readonly platform?: string
  readonly format?: 'oci' | 'v2s2'
  readonly preserveDigests?: boolean
  readonly signal?: AbortSignal
}

export interface SkopeoInspectOptions {
  readonly creds?: Credentials
  /** Print the manifest exactly as served. */
  readonly raw?: boolean
  readonly platform?: string
  readonly signal?: AbortSignal
}

const creds = (c: Credentials) => `${c.username}:${c.password}`

/**
 * Flags that keep skopeo away from the machine's own setup: no registries.conf (1.9.3 ignores
 * CONTAINERS_REGISTRIES_CONF, so it is passed as a flag), no signature policy, no stored logins.
 */
function globalFlags(platform: string | undefined): string[] {
  const flags = ['--insecure-policy', '--registries-conf', '/dev/null']
  if (platform !== undefined) {
    const [os, arch, variant] = platform.split('/')
    if (os === undefined || arch === undefined) throw new Error(`bad platform ${platform}`)
    flags.push('--override-os', os, '--override-arch', arch)
    if (variant !== undefined) flags.push('--override-variant', variant)
  }
  return flags
}

// An auth file that does not exist: skopeo then uses only the credentials given on the command line.
const ENV = { REGISTRY_AUTH_FILE: '/nonexistent/shoal-e2e-auth.json' }

/** `skopeo copy SRC DST`, plain HTTP to any `docker://` side; throws CommandError on failure. */
export async function skopeoCopy(src: string, dst: string, opts: SkopeoCopyOptions = {}): Promise<RunResult> {
  const args = [...globalFlags(opts.platform), 'copy', '--quiet']
  if (src.startsWith('docker://')) args.push('--src-tls-verify=false')
  if (dst.startsWith('docker://')) args.push('--dest-tls-verify=false')
  if (opts.srcCreds !== undefined) args.push('--src-creds', creds(opts.srcCreds))
  else if (src.startsWith('docker://')) args.push('--src-no-creds')
  if (opts.destCreds !== undefined) args.push('--dest-creds', creds(opts.destCreds))
  else if (dst.startsWith('docker://')) args.push('--dest-no-creds')
  if (opts.all === true) args.push('--all')
  if (opts.format !== undefined) args.push('--format', opts.format)
  if (opts.preserveDigests === true) args.push('--preserve-digests')
  args.push(src, dst)
  return runOk('skopeo', args, { env: ENV, ...(opts.signal === undefined ? {} : { signal: opts.signal }) })
}

/** `skopeo inspect`: the raw manifest (`raw`) or skopeo's JSON summary. */
export async function skopeoInspect(ref: string, opts: SkopeoInspectOptions = {}): Promise<string> {
  const args = [...globalFlags(opts.platform), 'inspect', '--tls-verify=false']
  args.push(...(opts.creds === undefined ? ['--no-creds'] : ['--creds', creds(opts.creds)]))
  if (opts.raw === true) args.push('--raw')
  args.push(ref)
  const { stdout } = await runOk('skopeo', args, {
    env: ENV,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  })
  return stdout
}

export interface DirBlob {
  /** The digest the file name claims. */
  readonly named: string
  /** The digest of the file's bytes. */
  readonly computed: string
  readonly size: number
}

/**
 * The blobs of a `dir:` image skopeo wrote (files named by their sha256 hex), each re-hashed from disk,
 * so a test can compare what the client got against what the origin holds.
 */
export async function dirBlobs(dir: string): Promise<Map<string, DirBlob>> {
  const out = new Map<string, DirBlob>()
  for (const name of await readdir(dir)) {
    if (!/^[a-f0-9]{64}$/.test(name)) continue
    const path = join(dir, name)
    const digester = new Digester('sha256')
    await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) digester.update(chunk)
    })
    const { size } = await stat(path)
    out.set(`sha256:${name}`, { named: `sha256:${name}`, computed: digester.digest(), size })
  }
  return out
}
