/**
 * Shoal processes as a user starts them (`node bin/shoal.js agent …`, `… seeder …`), optionally under
 * `node --cpu-prof`, and the reference servers the bench compares them with.
 */
import { readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Daemon, freePort, removeDir, tempDir, waitForHttp } from '../../harness/e2e/index.ts'
import { type HeapSnapshot, heapLines, summarizeHeap } from './heap.ts'
import { callerLines, type CpuProfile, profileLines, summarizeByCaller, summarizeProfile } from './profile.ts'
import type { RowRun } from './report.ts'
import { withPeerId } from '../../shared/swarm/index.ts'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface ShoalProcess {
  readonly role: string
  /** `http://127.0.0.1:PORT`: the agent's /v2/ mirror, or the seeder's API. */
  readonly url: string
  readonly pid: number
  readonly daemon: Daemon
  /**
   * Stops the process (SIGTERM, so a profile is written) and returns its profile summary, if profiled: one per row
   * of `rows` that has a window (what the process did during that row), else one for its whole life.
   */
  stop(rows?: readonly RowRun[]): Promise<string[]>
  /** With `heapSnapshots`: writes a heap snapshot now (SIGUSR2) and returns its summary. */
  heapSnapshot(): Promise<string[]>
}

export interface LaunchOptions {
  /** Source tree whose `bin/shoal.js` runs (this one, or an older commit's for a before/after). */
  readonly tree: string
  /** When set, the process runs under `node --cpu-prof` and writes its profile here. */
  readonly profileDir?: string
  /** When set, the process writes a heap snapshot here on SIGUSR2 (`heapSnapshot()`). */
  readonly heapSnapshotDir?: string
}

/** The developer's SHOAL_* settings must not leak into a measured process. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_')))
}

async function launch(
  role: string,
  args: readonly string[],
  readyUrl: string,
  url: string,
  opts: LaunchOptions,
): Promise<ShoalProcess> {
  const profDir = opts.profileDir === undefined ? undefined : await tempDir('datapath-prof')
  const node = profDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`]
  const heapDir = opts.heapSnapshotDir
  if (heapDir !== undefined) node.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir}`)
  const daemon = new Daemon(role, process.execPath, [...node, join(opts.tree, 'bin', 'shoal.js'), ...args], {
    cwd: opts.tree,
    env: cleanEnv(),
  })
  try {
    await waitForHttp(readyUrl, { daemon, timeoutMs: 60_000 })
  } catch (err) {
    await daemon.stop('SIGKILL')
    throw err
  }
  return {
    role,
    url,
    pid: daemon.pid,
    daemon,
    async heapSnapshot() {
      if (heapDir === undefined) throw new Error(`${role} was not started for heap snapshots`)
      const before = new Set(await readdir(heapDir))
      process.kill(daemon.pid, 'SIGUSR2')
      // V8 writes the snapshot on the main thread: once the process answers HTTP again, the file is complete.
      let file: string | undefined
      for (let i = 0; i < 600 && file === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100))
        file = (await readdir(heapDir)).find((n) => n.endsWith('.heapsnapshot') && !before.has(n))
      }
      if (file === undefined) throw new Error(`${role} wrote no heap snapshot`)
      await waitForHttp(readyUrl, { daemon, timeoutMs: 120_000 })
      const snap = JSON.parse(await readFile(join(heapDir, file), 'utf8')) as HeapSnapshot
      const kept = join(heapDir, `${role.replace(/[^\w.-]+/g, '-')}.heapsnapshot`)
      await rename(join(heapDir, file), kept)
      return heapLines(`${role}, idle`, summarizeHeap(snap))
    },
    async stop(rows) {
      await daemon.stop('SIGTERM')
      if (profDir === undefined) return []
      try {
        return await profileSummaries(role, profDir, opts.profileDir!, rows ?? [])
      } finally {
        await removeDir(profDir)
      }
    },
  }
}

/** Summarises the profiles in `dir` and keeps them under `keepIn` for a closer look (e.g. Chrome DevTools). */
async function profileSummaries(role: string, dir: string, keepIn: string, rows: readonly RowRun[]): Promise<string[]> {
  const lines: string[] = []
  const names = (await readdir(dir)).filter((n) => n.endsWith('.cpuprofile'))
  for (const [i, name] of names.entries()) {
    const text = await readFile(join(dir, name), 'utf8')
    // One file per thread (worker threads write their own): numbered so none overwrites another.
    const thread = names.length === 1 ? '' : `-${i + 1}`
    const kept = join(keepIn, `${role.replace(/[^\w.-]+/g, '-')}${thread}.cpuprofile`)
    await writeFile(kept, text)
    const profile = JSON.parse(text) as CpuProfile
    const windows = rows.filter((r) => r.window !== undefined)
    if (windows.length === 0) {
      lines.push(...profileLines(`${role}, whole life`, summarizeProfile(profile)))
      lines.push(...callerLines(`${role}, whole life`, summarizeByCaller(profile)))
    }
    for (const r of windows) {
      const title = `${role}, during "${r.label}"`
      lines.push(...profileLines(title, summarizeProfile(profile, 15, r.window)))
      lines.push(...callerLines(title, summarizeByCaller(profile, 15, r.window)))
    }
  }
  return lines
}

export async function startAgent(
  role: string,
  o: { origin: string; dataDir: string; seeder?: string; extra?: readonly string[] },
  opts: LaunchOptions,
): Promise<ShoalProcess> {
  const host = `127.0.0.1:${await freePort()}`
  const args = ['agent', '--listen', host, '--origin', o.origin, '--data', o.dataDir]
  if (o.seeder !== undefined) args.push('--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--seeder', o.seeder)
  args.push(...(o.extra ?? []))
  return launch(role, args, `http://${host}/readyz`, `http://${host}`, opts)
}

export interface Seeder extends ShoalProcess {
  /** `/ip4/127.0.0.1/tcp/PORT/p2p/PEERID`, what `--seeder` takes. */
  readonly multiaddr: string
}

export async function startSeeder(
  role: string,
  o: { origin: string; dataDir: string },
  opts: LaunchOptions,
): Promise<Seeder> {
  const api = `127.0.0.1:${await freePort()}`
  const args = ['seeder', '--origin', o.origin, '--data', o.dataDir, '--p2p-listen', '/ip4/127.0.0.1/tcp/0']
  args.push('--api-listen', api)
  const p = await launch(role, args, `http://${api}/readyz`, `http://${api}`, opts)
  const status = (await (await fetch(`${p.url}/status`)).json()) as { peerId: string; multiaddrs: string[] }
  const addr = status.multiaddrs.find((m) => m.startsWith('/ip4/127.0.0.1/tcp/'))
  if (addr === undefined) throw new Error(`seeder has no loopback TCP address: ${status.multiaddrs.join(', ')}`)
  return { ...p, multiaddr: withPeerId(addr, status.peerId) }
}

/** The Node floor (`floor.ts`) over `file`, a separate process. */
export async function startFloor(file: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const daemon = new Daemon('floor', process.execPath, [join(REPO_ROOT, 'bench', 'datapath', 'floor.ts'), file], {
    cwd: REPO_ROOT,
  })
  const port = await daemon.waitForLine((l) => /^listening (\d+)$/.exec(l)?.[1])
  return {
    url: `http://127.0.0.1:${port}`,
    pid: daemon.pid,
    async stop() {
      await daemon.stop('SIGTERM')
    },
  }
}
