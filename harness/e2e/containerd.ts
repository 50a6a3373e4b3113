import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Daemon } from '../daemon.ts'
import { type RunResult, removeDir, runOk, tempDir } from './process.ts'

const NAMESPACE = 'shoal-e2e'

export interface CtrPullOptions {
  /** A `--hosts-dir` (see writeHostsToml). */
  readonly hostsDir: string
  /** `os/arch[/variant]`; default: containerd's own platform. */
  readonly platform?: string
  readonly allPlatforms?: boolean
  /** `user:password`, offered to every host that challenges (mirror and server alike). */
  readonly user?: string
  readonly signal?: AbortSignal
}

export interface Containerd {
  /** The daemon's gRPC socket. */
  readonly address: string
  readonly daemon: Daemon
  /** Runs `ctr --address … -n shoal-e2e <args>`; throws CommandError on failure. */
  ctr(args: readonly string[], opts?: { signal?: AbortSignal }): Promise<RunResult>
  /** `ctr images pull --snapshotter native --hosts-dir …`: fetches and unpacks. */
  pull(ref: string, opts: CtrPullOptions): Promise<RunResult>
  /** Digests in containerd's content store. */
  contentDigests(opts?: { signal?: AbortSignal }): Promise<Set<string>>
  /** `ctr images rm --sync` for each ref: content goes with the last image using it. */
  removeImages(refs: readonly string[], opts?: { signal?: AbortSignal }): Promise<void>
  stop(): Promise<void>
}

/**
 * Starts a private containerd as root: own root, state and socket under a temp dir, native
 * snapshotter (no overlayfs needed), no CRI plugin. Nothing is shared with a system containerd.
 */
export async function startContainerd(opts: { signal?: AbortSignal } = {}): Promise<Containerd> {
  const dir = await tempDir('containerd')
  const address = join(dir, 'containerd.sock')
  // Unix socket paths must stay under 108 bytes; tmpdir paths are short, but say so if not.
  if (Buffer.byteLength(address) > 100) throw new Error(`containerd socket path too long: ${address}`)
  const disabled = ['cri', 'btrfs', 'zfs', 'devmapper', 'aufs', 'overlayfs'].map((p) =>
    p === 'cri' ? 'io.containerd.grpc.v1.cri' : `io.containerd.snapshotter.v1.${p}`,
  )
  const config = [
    'version = 2',
    `root = ${JSON.stringify(join(dir, 'root'))}`,
    `state = ${JSON.stringify(join(dir, 'state'))}`,
    `disabled_plugins = ${JSON.stringify(disabled)}`,
    '[grpc]',
    `  address = ${JSON.stringify(address)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(join(dir, 'opt'))}`,
    '',
  ].join('\n')
  const configPath = join(dir, 'config.toml')
  await writeFile(configPath, config)
  const daemon = new Daemon('containerd', 'containerd', ['--config', configPath], {
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir },
  })
  try {
    await daemon.waitForLine(
      (line) => (line.includes('containerd successfully booted') ? true : undefined),
      opts.signal === undefined ? {} : { signal: opts.signal },
    )
  } catch (err) {
    await daemon.stop('SIGKILL')
    await removeDir(dir)
    throw err
  }

  const ctr = (args: readonly string[], o: { signal?: AbortSignal } = {}) =>
    runOk('ctr', ['--address', address, '--namespace', NAMESPACE, ...args], o.signal === undefined ? {} : o)

  return {
    address,
    daemon,
    ctr,
    pull(ref, o) {
      const args = ['images', 'pull', '--snapshotter', 'native', '--hosts-dir', o.hostsDir]
      if (o.platform !== undefined) args.push('--platform', o.platform)
      if (o.allPlatforms === true) args.push('--all-platforms')
      if (o.user !== undefined) args.push('--user', o.user)
      return ctr([...args, ref], o.signal === undefined ? {} : { signal: o.signal })
    },
    async contentDigests(o = {}) {
      const { stdout } = await ctr(['content', 'ls', '--quiet'], o)
      return new Set(stdout.split('\n').filter((l) => l.trim() !== ''))
    },
    async removeImages(refs, o = {}) {
      if (refs.length > 0) await ctr(['images', 'rm', '--sync', ...refs], o)
    },
    async stop() {
      await daemon.stop()
      await removeDir(dir)
    },
  }
}

export interface HostsTomlOptions {
  /** The upstream itself (`server = …`); default `http://<registryHost>`. */
  readonly server?: string
  /** Mirrors tried in order before the server, e.g. `http://127.0.0.1:PORT`. */
  readonly mirrors: readonly string[]
  readonly capabilities?: readonly ('pull' | 'resolve' | 'push')[]
}

/**
 * Writes `<hostsDir>/<registryHost>/hosts.toml` so containerd sends pulls for `registryHost` to the
 * mirrors first (adding `?ns=<registryHost>`) and to the server only if they fail.
 */
export async function writeHostsToml(hostsDir: string, registryHost: string, opts: HostsTomlOptions): Promise<string> {
  const capabilities = JSON.stringify(opts.capabilities ?? ['pull', 'resolve'])
  const lines = [`server = ${JSON.stringify(opts.server ?? `http://${registryHost}`)}`, '']
  for (const mirror of opts.mirrors) {
    lines.push(`[host.${JSON.stringify(mirror)}]`, `  capabilities = ${capabilities}`, '')
  }
  const dir = join(hostsDir, registryHost)
  await mkdir(dir, { recursive: true })
  const path = join(dir, 'hosts.toml')
  await writeFile(path, lines.join('\n'))
  return path
}
