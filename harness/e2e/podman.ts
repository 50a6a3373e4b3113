import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type RunResult, runOk } from './process.ts'
import type { Credentials } from './skopeo.ts'

export interface RegistriesConfOptions {
  /** The registry an image reference names, e.g. `127.0.0.1:5100`. */
  readonly location: string
  /** Tried in order before `location`; containers/image does not send `?ns=` to a mirror. */
  readonly mirrors: readonly string[]
}

/** Writes a registries.conf that sends pulls for `location` to plain-HTTP mirrors first. */
export async function writeRegistriesConf(path: string, opts: RegistriesConfOptions): Promise<string> {
  const lines = [
    'unqualified-search-registries = []',
    '',
    '[[registry]]',
    `location = ${JSON.stringify(opts.location)}`,
    'insecure = true',
  ]
  for (const mirror of opts.mirrors) {
    lines.push('', '[[registry.mirror]]', `location = ${JSON.stringify(mirror)}`, 'insecure = true')
  }
  await writeFile(path, `${lines.join('\n')}\n`)
  return path
}

export interface PodmanOptions {
  readonly registriesConf: string
  /** Holds podman's storage root, run root and temp dirs; created if missing. */
  readonly storageDir: string
  readonly creds?: Credentials
  readonly platform?: string
  readonly signal?: AbortSignal
}

/** Arguments and environment that keep podman in `storageDir`, on vfs, with no systemd or journald. */
async function podmanSetup(opts: PodmanOptions): Promise<{ args: string[]; env: Record<string, string> }> {
  const dir = opts.storageDir
  const runtimeDir = join(dir, 'xdg')
  await mkdir(runtimeDir, { recursive: true, mode: 0o700 })
  // podman insists that REGISTRY_AUTH_FILE exists; an empty one keeps the machine's logins out.
  const authFile = join(dir, 'auth.json')
  await writeFile(authFile, '{}\n', { mode: 0o600 })
  const storageConf = join(dir, 'storage.conf')
  await writeFile(
    storageConf,
    `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(join(dir, 'root'))}\nrunroot = ${JSON.stringify(join(dir, 'run'))}\n`,
  )
  return {
    args: [
      '--root',
      join(dir, 'root'),
      '--runroot',
      join(dir, 'run'),
      '--storage-driver',
      'vfs',
      '--tmpdir',
      join(dir, 'tmp'),
      '--events-backend',
      'file',
      '--cgroup-manager',
      'cgroupfs',
    ],
    env: {
      CONTAINERS_REGISTRIES_CONF: opts.registriesConf,
      CONTAINERS_STORAGE_CONF: storageConf,
      REGISTRY_AUTH_FILE: authFile,
      XDG_RUNTIME_DIR: runtimeDir,
    },
  }
}

/** `podman pull REF` with the given registries.conf; throws CommandError on failure. */
export async function podmanPull(ref: string, opts: PodmanOptions): Promise<RunResult> {
  const { args, env } = await podmanSetup(opts)
  args.push('pull', '--quiet')
  if (opts.creds !== undefined) args.push('--creds', `${opts.creds.username}:${opts.creds.password}`)
  if (opts.platform !== undefined) args.push('--platform', opts.platform)
  args.push(ref)
  return runOk('podman', args, { env, ...(opts.signal === undefined ? {} : { signal: opts.signal }) })
}

export interface PodmanImage {
  /** The manifest digest podman recorded. */
  readonly digest: string
  /** Layer diff IDs as stored after unpacking. */
  readonly layers: readonly string[]
}

/** `podman image inspect REF`. */
export async function podmanInspect(ref: string, opts: PodmanOptions): Promise<PodmanImage> {
  const { args, env } = await podmanSetup(opts)
  const { stdout } = await runOk('podman', [...args, 'image', 'inspect', ref], {
    env,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  })
  const [image] = JSON.parse(stdout) as { Digest: string; RootFS: { Layers: string[] } }[]
  if (image === undefined) throw new Error(`podman knows no image ${ref}`)
  return { digest: image.Digest, layers: image.RootFS.Layers }
}
