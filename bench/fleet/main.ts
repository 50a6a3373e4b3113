/**
 * Fleet benchmark: `npm run bench [-- --quick]` (as root).
 *
 * Builds N hosts as network namespaces on one bridge with tc-shaped links, runs a real docker-registry
 * origin holding a generated image, and rolls the image out to every node in each scenario (direct,
 * pull-through cache, shoal cold, shoal preheated), side by side, on the same image and links. With
 * `--sites K --site-nodes M --wan MBIT` the nodes sit in K edge sites, each behind its own shaped WAN link to
 * the core (origin, seeder, cache), and the site-aware Shoal scenario (`shoal-sites`) joins them. Writes
 * bench/results/<timestamp>/{report.json,report.svg,summary.md}; daemon logs go to bench/results/raw/.
 */
import { spawnSync } from 'node:child_process'
import { closeSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { type BenchConfig, parseBenchArgs, type ScenarioName, USAGE } from './config.ts'
import { BenchUsageError } from './errors.ts'
import { Fleet, sweepNamespaces } from './fleet.ts'
import { pushImage } from './image.ts'
import { planRun } from './netns.ts'
import { preflight } from './preflight.ts'
import { liveDaemons } from '../../harness/daemon.ts'
import { startRegistry } from './registry.ts'
import { buildReport, type MachineInfo, profilesMarkdown, type ScenarioMeasurement, summaryMarkdown } from './report.ts'
import { runScenario } from './run.ts'
import type { Scenario } from './scenario.ts'
import { direct, pullThroughCache } from './scenarios/baselines.ts'
import { shoal, shoalSeederless } from './scenarios/shoal.ts'
import { renderSvg } from './svg.ts'

const LOCK_FILE = '/run/shoal-bench.lock'
/** Scratch folders (pulled images: up to N×S bytes) are named so a later run can remove a killed run's. */
const WORK_PREFIX = 'shoal-fleet-'
const started = performance.now()
function log(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`)
}

function scenarioFor(name: ScenarioName): Scenario {
  switch (name) {
    case 'direct':
      return direct
    case 'cache':
      return pullThroughCache()
    case 'shoal-cold':
      return shoal('cold')
    case 'shoal-preheated':
      return shoal('preheated')
    case 'shoal-sites':
      return shoal('sites')
    case 'shoal-seederless':
      return shoalSeederless()
  }
}

function version(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n', 1)[0] ?? ''
}

function machineInfo(loadAverage: readonly number[]): MachineInfo {
  const c = cpus()
  return {
    cpus: c.length,
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    tools: {
      'docker-registry': version('docker-registry', ['--version']),
      skopeo: version('skopeo', ['--version']),
      iproute2: version('ip', ['-V']),
    },
    loadAverage,
  }
}

/** One run at a time: a second one would sweep the first one's namespaces. */
function takeLock(): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(LOCK_FILE, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number(readFileSync(LOCK_FILE, 'utf8').trim())
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new Error(`another fleet benchmark (pid ${pid}) is running; ${LOCK_FILE} holds its pid`, {
          cause: err,
        })
      }
      rmSync(LOCK_FILE, { force: true })
    }
  }
  throw new Error(`could not take ${LOCK_FILE}`)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

let lockHeld = false
let tornDown = false
let scratchDir: string | undefined
/** Synchronous, idempotent, and safe from any state: kills our daemons, removes every shoal-b-* namespace. */
function teardownSync(): void {
  if (tornDown) return
  tornDown = true
  for (const d of liveDaemons) d.killNow()
  const removed = sweepNamespaces()
  if (removed.length > 0) log(`removed ${removed.length} namespaces`)
  if (scratchDir !== undefined) rmSync(scratchDir, { recursive: true, force: true })
  if (lockHeld) {
    try {
      unlinkSync(LOCK_FILE)
    } catch {
      // already gone
    }
  }
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replaceAll(':', '-')
}

async function bench(config: BenchConfig, argv: readonly string[], signal: AbortSignal): Promise<string> {
  const startedAt = new Date()
  const loadAtStart = loadavg()
  const outDir = resolve(config.outDir, stamp(startedAt))
  const logDir = resolve(config.outDir, 'raw', stamp(startedAt))
  const workDir = await mkdtemp(join(tmpdir(), WORK_PREFIX))
  scratchDir = workDir
  try {
    const plan = planRun(config)
    const { hosts } = plan
    let t = performance.now()
    const fleet = await Fleet.create(plan, { signal })
    const fleetS = (performance.now() - t) / 1000
    const sitesNote =
      plan.sites.length === 0 ? '' : ` in ${plan.sites.length} sites behind ${config.sites?.wanMbit} mbit WAN links`
    log(`fleet of ${hosts.length} hosts up${sitesNote} in ${fleetS.toFixed(1)} s`)

    t = performance.now()
    await mkdir(logDir, { recursive: true })
    const origin = await startRegistry(fleet, fleet.origin, join(workDir, 'origin'), { signal })
    const originS = (performance.now() - t) / 1000
    const image = await pushImage(fleet, origin.host, config.image, workDir, {
      signal,
    })
    log(
      `origin ${origin.url} holds ${image.originRef} (${image.bytes} bytes): generated in ` +
        `${image.generateS.toFixed(1)} s, pushed in ${image.pushS.toFixed(1)} s`,
    )
    const setup = {
      fleetS,
      originS,
      imageGenerateS: image.generateS,
      imagePushS: image.pushS,
      totalS: (performance.now() - started) / 1000,
    }

    const measurements: ScenarioMeasurement[] = []
    for (const name of config.scenarios) {
      signal.throwIfAborted()
      const m = await runScenario(scenarioFor(name), {
        fleet,
        image,
        originHost: origin.host,
        config,
        workDir,
        logDir,
        signal,
        log,
      })
      measurements.push(m)
    }
    await origin.stop()

    const report = buildReport({
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: argv.length === 0 ? 'npm run bench' : ['npm run bench --', ...argv].join(' '),
      machine: machineInfo(loadAtStart),
      config,
      image,
      hosts,
      setup,
      scenarios: measurements,
    })
    await mkdir(outDir, { recursive: true })
    const summary = summaryMarkdown(report)
    await writeFile(join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`)
    await writeFile(join(outDir, 'report.svg'), renderSvg(report))
    await writeFile(join(outDir, 'summary.md'), summary)
    const profiles = profilesMarkdown(report, measurements)
    if (profiles !== undefined) await writeFile(join(outDir, 'profiles.md'), profiles)
    const files = ['report.json', 'report.svg', 'summary.md', ...(profiles === undefined ? [] : ['profiles.md'])]
    process.stdout.write(`${summary}\nWritten to ${outDir}/ (${files.join(', ')})\n`)
    return outDir
  } finally {
    await rm(workDir, { recursive: true, force: true })
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let config: BenchConfig | 'help'
  try {
    config = parseBenchArgs(argv)
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err
    process.stderr.write(`bench: ${err.message}\n\n${USAGE}\n`)
    return 2
  }
  if (config === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const cannot = preflight(process.getuid?.())
  if (cannot !== undefined) {
    process.stderr.write(`${cannot}\n`)
    return 3
  }
  takeLock()
  lockHeld = true
  process.on('exit', teardownSync)
  const leftovers = sweepNamespaces()
  if (leftovers.length > 0) log(`removed ${leftovers.length} namespaces left by an earlier run`)
  // Under the lock no other fleet run exists, so every such folder is a killed run's.
  for (const name of readdirSync(tmpdir())) {
    if (name.startsWith(WORK_PREFIX)) rmSync(join(tmpdir(), name), { recursive: true, force: true })
  }

  const controller = new AbortController()
  let exitCode = 0
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      // A second signal: no more waiting for graceful stops.
      teardownSync()
      process.exit(sig === 'SIGINT' ? 130 : 143)
    }
    log(`${sig}: stopping and tearing the fleet down`)
    exitCode = sig === 'SIGINT' ? 130 : 143
    controller.abort(new Error(`interrupted by ${sig}`))
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal)
  try {
    await bench(config, argv, controller.signal)
  } catch (err) {
    if (!controller.signal.aborted) {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      exitCode = 1
    }
  } finally {
    await Promise.all([...liveDaemons].map((d) => d.stop('SIGTERM', 2_000)))
    teardownSync()
  }
  return exitCode
}

// Exit explicitly: the fleet is gone by now, and nothing left in the event loop may keep the process up.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  },
)
