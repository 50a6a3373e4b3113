import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Daemon } from '../daemon.ts'
import { type RunResult, removeDir, run, runOk, tempDir } from './process.ts'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SHOAL_BIN = join(REPO_ROOT, 'bin', 'shoal.js')

/** Runs the real `shoal` command (`node bin/shoal.js …`) to completion; throws CommandError on failure. */
export function shoalCli(args: readonly string[]): Promise<RunResult> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_')))
  return runOk(process.execPath, [SHOAL_BIN, ...args], { cwd: REPO_ROOT, env: env as Record<string, string> })
}

/** Every file and folder under `dir`, with each file's mode and bytes: two equal snapshots are equal trees. */
export async function treeSnapshot(dir: string, prefix = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = `${prefix}${e.name}`
    if (e.isDirectory()) {
      out.set(`${rel}/`, 'dir')
      for (const [k, v] of await treeSnapshot(join(dir, e.name), `${rel}/`)) out.set(k, v)
    } else {
      const mode = ((await stat(join(dir, e.name))).mode & 0o7777).toString(8)
      out.set(rel, `${mode} ${(await readFile(join(dir, e.name))).toString('base64')}`)
    }
  }
  return out
}

// Debian's docker.io package: its own client, by full path (another `docker` may come first on PATH).
const DOCKERD = '/usr/sbin/dockerd'
const DOCKER = '/usr/bin/docker'

export interface Dockerd {
  readonly daemon: Daemon
  /** Runs `docker -H unix://… <args>`; throws CommandError on failure. */
  docker(args: readonly string[]): Promise<RunResult>
  stop(): Promise<void>
}

/**
 * Starts a private dockerd as root: its own data root, exec root, pid file and socket under a temp dir, vfs
 * storage, no iptables and no bridge (nothing on the host network changes), and `configFile` as its
 * daemon.json.
 */
export async function startDockerd(configFile: string): Promise<Dockerd> {
  const dir = await tempDir('dockerd')
  const socket = join(dir, 'docker.sock')
  const dataRoot = join(dir, 'root')
  const args = [
    ...['--config-file', configFile, '--iptables=false', '--bridge=none', '--ip-forward=false', '--ip-masq=false'],
    ...['--storage-driver', 'vfs', '--data-root', dataRoot, '--exec-root', join(dir, 'exec')],
    ...['--pidfile', join(dir, 'docker.pid'), '-H', `unix://${socket}`],
  ]
  const daemon = new Daemon('dockerd', DOCKERD, args, {
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir },
  })
  const stop = async () => {
    await daemon.stop()
    // dockerd makes its data root a private mount of itself; it can stay behind after the exit.
    await run('umount', [dataRoot])
    await removeDir(dir)
  }
  try {
    await daemon.waitForLine((line) => (line.includes('API listen on') ? true : undefined), { timeoutMs: 60_000 })
  } catch (err) {
    await stop()
    throw err
  }
  return {
    daemon,
    docker: (a) => runOk(DOCKER, ['-H', `unix://${socket}`, ...a]),
    stop,
  }
}
