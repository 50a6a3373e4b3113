import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import type { BenchConfig } from './config.ts'
import type { LinkCounters } from './counters.ts'
import { diffCounters, ZERO_COUNTERS } from './counters.ts'
import { busySeconds, type CpuSnapshot, cpuUse, readCpu } from './cpu.ts'
import { cpuByKind, type ProcessTimes, sampleProcesses } from './process-cpu.ts'
import { BenchCommandError } from './errors.ts'
import type { Fleet } from './fleet.ts'
import type { BenchImage } from './image.ts'
import type { HostPlan } from './netns.ts'
import { Daemon } from '../../harness/daemon.ts'
import { FLEET_DAEMON, run } from './proc.ts'
import { type CpuProfile, type ProfileWindow, summarizeProfile } from '../datapath/profile.ts'
import type { DaemonProfile, ScenarioMeasurement } from './report.ts'
import { type NodeResult, rollout, type Sample, Sampler } from './rollout.ts'
import { PULL_ENV, type Scenario, type ScenarioContext } from './scenario.ts'
import type { WanCut, WanCutDone } from './sites.ts'

const PROBE_SCRIPT = new URL('./children/probe.ts', import.meta.url).pathname
/** The machine's own load is read over this window right before each rollout. */
const BACKGROUND_WINDOW_MS = 1_000

export interface RunEnv {
  readonly fleet: Fleet
  readonly image: BenchImage
  readonly originHost: string
  readonly config: BenchConfig
  /** Scratch space: scenario state and pulled images (removed after each scenario). */
  readonly workDir: string
  /** Kept: daemon logs per scenario. */
  readonly logDir: string
  readonly signal: AbortSignal
  log(message: string): void
}

function diffAll(
  before: ReadonlyMap<string, LinkCounters>,
  after: ReadonlyMap<string, LinkCounters>,
): Record<string, LinkCounters> {
  const out: Record<string, LinkCounters> = {}
  for (const [name, a] of after) out[name] = diffCounters(before.get(name) ?? ZERO_COUNTERS, a)
  return out
}

/**
 * Runs `cut` against the rollout that starts at `t0`: the site's WAN link down at `atS`, up again `forS`
 * later. `finish()` (called when the rollout is over, however it ended) brings the link back at once if it
 * is still down, so the next scenario always starts with every site connected.
 */
function startWanCut(fleet: Fleet, cut: WanCut, t0: number, log: (m: string) => void) {
  const site = fleet.site(cut.site)
  const since = () => (performance.now() - t0) / 1000
  let downAtS: number | undefined
  let upAtS: number | undefined
  let error: string | undefined
  let down = false
  let work: Promise<void> = Promise.resolve()
  const timers: NodeJS.Timeout[] = []
  const step = (state: 'down' | 'up') => {
    work = work.then(async () => {
      if (state === 'down' ? down || upAtS !== undefined : !down) return
      try {
        await fleet.setWan(site, state)
        down = state === 'down'
        if (state === 'down') downAtS = since()
        else upAtS = since()
        log(`${cut.site} WAN link ${state} at ${since().toFixed(1)} s`)
      } catch (err) {
        error ??= errorText(err)
      }
    })
  }
  timers.push(setTimeout(() => step('down'), cut.atS * 1000))
  timers.push(setTimeout(() => step('up'), (cut.atS + cut.forS) * 1000))
  return {
    async finish(): Promise<WanCutDone> {
      for (const t of timers) clearTimeout(t)
      step('up')
      await work
      return {
        ...cut,
        ...(downAtS === undefined ? {} : { downAtS }),
        ...(upAtS === undefined ? {} : { upAtS }),
        ...(error === undefined ? {} : { error }),
      }
    },
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** One scenario from a wiped fleet to a wiped fleet: setup, the timed rollout, teardown. */
export async function runScenario(scenario: Scenario, env: RunEnv): Promise<ScenarioMeasurement> {
  const { fleet, signal } = env
  const dir = join(env.workDir, scenario.name)
  const pulls = join(env.workDir, `${scenario.name}-pulls`)
  const logs = join(env.logDir, scenario.name)
  await Promise.all([dir, pulls, logs].map((d) => rm(d, { recursive: true, force: true })))
  await Promise.all([dir, pulls, logs].map((d) => mkdir(d, { recursive: true })))
  const daemons: Daemon[] = []
  const ctx: ScenarioContext = {
    fleet,
    image: env.image,
    originHost: env.originHost,
    originUrl: `http://${env.originHost}`,
    config: env.config,
    dir,
    signal,
    pullDest: (node: HostPlan) => join(pulls, node.name),
    daemon(host, name, cmd, args, daemonEnv) {
      // `--cpu-prof`: every Node daemon (Shoal's agents and seeder) writes a profile into its own folder on exit.
      const prof = env.config.cpuProf && cmd === process.execPath
      const exec = fleet.exec(
        host,
        cmd,
        prof ? ['--cpu-prof', `--cpu-prof-dir=${join(logs, 'profiles', name)}`, ...args] : args,
      )
      const d = new Daemon(`${scenario.name}/${name}`, exec.cmd, exec.args, {
        ...FLEET_DAEMON,
        logFile: join(logs, `${name}.log`),
        ...(daemonEnv === undefined ? {} : { env: daemonEnv }),
      })
      daemons.push(d)
      return d
    },
    run: (host, cmd, args, timeoutMs = 60_000) => run(fleet.exec(host, cmd, args), { timeoutMs, signal }),
    async probe(host, url, waitMs) {
      const r = await run(fleet.exec(host, process.execPath, [PROBE_SCRIPT, url, String(waitMs)]), {
        timeoutMs: waitMs + 15_000,
        signal,
      })
      if (r.code !== 0) throw new BenchCommandError(`from ${host.name}: ${r.stderr.trim() || `exit ${r.code}`}`)
      return r.stdout
    },
    log: (m) => env.log(`${scenario.name}: ${m}`),
  }
  const base = { name: scenario.name, title: scenario.title }
  let result: ScenarioMeasurement
  let window: ProfileWindow | undefined
  try {
    let reason: string | undefined
    try {
      reason = await scenario.unavailable(ctx)
    } catch (err) {
      reason = errorText(err)
    }
    if (reason !== undefined) {
      env.log(`${scenario.name}: not available: ${reason}`)
      return { ...base, status: 'unavailable', reason, nodes: [] }
    }
    const c0 = await fleet.counters({ signal })
    const tSetup = performance.now()
    try {
      await scenario.setup(ctx)
    } catch (err) {
      signal.throwIfAborted()
      const dead = daemons.filter((d) => !d.running).map((d) => `${d.name}: ${d.recentOutput(5)}`)
      const reason = [`setup failed: ${errorText(err)}`, ...dead].join('\n')
      env.log(`${scenario.name}: ${reason}`)
      return { ...base, status: 'failed', reason, nodes: [] }
    }
    const setupS = (performance.now() - tSetup) / 1000
    env.log(`${scenario.name}: setup ${setupS.toFixed(1)} s; rollout to ${fleet.nodes.length} nodes`)

    const bg0 = await readCpu()
    await new Promise((resolve) => setTimeout(resolve, BACKGROUND_WINDOW_MS))
    const bg1 = await readCpu()
    const loadBefore = loadavg()
    const c1 = await fleet.counters({ signal })
    const [cpu1, procs1] = await Promise.all([readCpu(), sampleProcesses()])
    const jobs = fleet.nodes.map((node) => ({
      node: node.name,
      command: fleet.exec(node, ...commandParts(scenario.pull(node, ctx))),
      dest: ctx.pullDest(node),
    }))
    const sampler = new Sampler(fleet, env.config.sampleMs)
    const windowStartUs = monotonicUs()
    const tRollout = performance.now()
    sampler.start(tRollout)
    const cut = env.config.wanCut === undefined ? undefined : startWanCut(fleet, env.config.wanCut, tRollout, ctx.log)
    let nodes: readonly NodeResult[]
    let cpu2: CpuSnapshot
    let procs2: Map<number, ProcessTimes>
    let profileWindow: ProfileWindow | undefined
    let c2: ReadonlyMap<string, LinkCounters>
    let timeline: readonly Sample[]
    let wanCut: WanCutDone | undefined
    try {
      nodes = await rollout(jobs, env.image, {
        timeoutMs: env.config.pullTimeoutS * 1000,
        signal,
        env: { ...process.env, ...PULL_ENV },
      })
      ;[cpu2, procs2] = await Promise.all([readCpu(), sampleProcesses()])
      profileWindow = { startUs: windowStartUs, endUs: monotonicUs() }
      c2 = await fleet.counters({ signal })
    } finally {
      // Also on abort: a sampler left running would keep the process alive after teardown.
      timeline = await sampler.stop()
      wanCut = await cut?.finish()
    }
    signal.throwIfAborted()
    const failed = nodes.filter((n) => !n.ok).length
    const slowest = Math.max(...nodes.map((n) => n.seconds))
    env.log(`${scenario.name}: rollout done in ${slowest.toFixed(1)} s${failed > 0 ? `, ${failed} nodes failed` : ''}`)
    result = {
      ...base,
      status: 'ok',
      setupS,
      nodes,
      rolloutCounters: diffAll(c1, c2),
      scenarioCounters: diffAll(c0, c2),
      cpu: {
        backgroundBusy: cpuUse(bg0, bg1).busy,
        loadAverage: loadBefore,
        rollout: cpuUse(cpu1, cpu2),
        busySeconds: busySeconds(cpu1, cpu2),
        byProcess: cpuByKind(procs1, procs2),
      },
      timeline,
      ...(wanCut === undefined ? {} : { wanCut }),
    }
    window = profileWindow
  } finally {
    try {
      await scenario.teardown(ctx)
    } finally {
      await Promise.all(daemons.map((d) => d.stop()))
      // Every cache is wiped before the next scenario: state dirs and pulled images go.
      await Promise.all([dir, pulls].map((d) => rm(d, { recursive: true, force: true })))
    }
  }
  // The daemons have stopped, so their profiles are written.
  if (!env.config.cpuProf || window === undefined) return result
  return { ...result, profiles: await rolloutProfiles(join(logs, 'profiles'), window) }
}

/** The microseconds V8 stamps profile samples with (CLOCK_MONOTONIC), read in this process. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/** Each daemon's `.cpuprofile` under `dir/<daemon name>/`, cut to the rollout, largest busy time first. */
async function rolloutProfiles(dir: string, window: ProfileWindow): Promise<DaemonProfile[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  const out: DaemonProfile[] = []
  for (const name of names) {
    for (const file of await readdir(join(dir, name)).catch(() => [] as string[])) {
      if (!file.endsWith('.cpuprofile')) continue
      const profile = JSON.parse(await readFile(join(dir, name, file), 'utf8')) as CpuProfile
      out.push({ daemon: name, summary: summarizeProfile(profile, 15, window) })
    }
  }
  return out.sort((a, b) => b.summary.busyMs - a.summary.busyMs)
}

function commandParts(c: { cmd: string; args: readonly string[] }): [string, readonly string[]] {
  return [c.cmd, c.args]
}
