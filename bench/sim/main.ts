/**
 * `npm run bench:sim`: the fleet benchmark's simulator. For each fleet size it simulates the scenarios with
 * Shoal's real scheduler and writes bench/results/sim/<timestamp>/N<size>/{report.json,report.svg,summary.md}
 * (the fleet's format) and a sweep.md over the sizes; `--compare FILE` simulates a real fleet report's exact
 * configuration and prints sim against real.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { scenarioBound } from '../fleet/bound.ts'
import { chunkSizeOf, uploadSlotsOf } from '../fleet/config.ts'
import { BenchUsageError } from '../fleet/errors.ts'
import { compareReports, comparisonMarkdown, parseFleetReport } from './compare.ts'
import { imageBlobs, parseSimArgs, SIM_USAGE, type SimConfig } from './config.ts'
import { siteNodeCount } from '../fleet/sites.ts'
import { imageBytesOf, runSites, SITE_SCENARIOS, sitesMarkdown } from './sites.ts'
import { buildSimReport, type SimReport, simSummaryMarkdown, simSvg, sweepMarkdown } from './report.ts'
import { simulate, type SimRun } from './run.ts'
import type { SimParams, SimScenario } from './world.ts'

/** Above this many nodes `direct` is N·S/U_o by arithmetic, and its N flows on one link make the model slow. */
const DIRECT_MAX_NODES = 1000

function log(msg: string): void {
  process.stderr.write(`[bench:sim] ${msg}\n`)
}

function runSize(cfg: SimConfig, params: SimParams, scenarios: readonly SimScenario[], command: string): SimReport {
  const startedAt = new Date().toISOString()
  const S = params.manifestBytes + params.blobBytes.reduce((a, b) => a + b, 0)
  const runs: SimRun[] = []
  for (const sc of scenarios) {
    if (sc === 'direct' && params.nodes > DIRECT_MAX_NODES) {
      log(`N=${params.nodes} ${sc}: skipped (above ${DIRECT_MAX_NODES} nodes it is N*S/U_o)`)
      continue
    }
    const bound = scenarioBound(sc, params.links, S, params.nodes).seconds
    const limitMs = cfg.limitFactor * bound * 1000
    log(`N=${params.nodes} ${sc}: T* ${bound.toFixed(1)} s, simulating (cut off at ${(limitMs / 1000).toFixed(0)} s)…`)
    const t0 = performance.now()
    const r = simulate(sc, { ...params, limitMs }, (at) => {
      // Only worth a line on runs long enough to wonder about.
      if (performance.now() - t0 < 30_000) return
      log(`N=${params.nodes} ${sc}: at ${at.simulatedS.toFixed(0)} s, ${at.nodesDone} nodes done, ${at.events} events`)
    })
    const ok = r.nodes.filter((n) => n.ok).length
    log(
      `N=${params.nodes} ${sc}: ${ok}/${r.nodes.length} done by ${r.simulatedS.toFixed(1)} s; ${r.events} events, ${r.wallS.toFixed(1)} s wall`,
    )
    runs.push(r)
  }
  return buildSimReport({ startedAt, finishedAt: new Date().toISOString(), command, cfg, params, runs })
}

async function write(dir: string, r: SimReport): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'report.json'), `${JSON.stringify(r, null, 2)}\n`)
  await writeFile(join(dir, 'report.svg'), simSvg(r))
  await writeFile(join(dir, 'summary.md'), simSummaryMarkdown(r))
}

async function main(argv: readonly string[]): Promise<number> {
  let cfg: SimConfig | 'help'
  try {
    cfg = parseSimArgs(argv)
  } catch (err) {
    if (err instanceof BenchUsageError) {
      process.stderr.write(`${err.message}\n\n${SIM_USAGE}\n`)
      return 2
    }
    throw err
  }
  if (cfg === 'help') {
    process.stdout.write(`${SIM_USAGE}\n`)
    return 0
  }
  const command = `npm run bench:sim --${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`
  const stamp = new Date()
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replaceAll(':', '-')
  const outDir = join(cfg.outDir, stamp)
  if (cfg.sites !== undefined) {
    const { blobBytes, manifestBytes } = imageBlobs(cfg.imageMib, cfg.layers)
    const params = { ...cfg.base, nodes: siteNodeCount(cfg.sites), blobBytes, manifestBytes }
    const results = runSites(
      {
        params,
        shape: cfg.sites,
        scenarios: SITE_SCENARIOS,
        preheated: !cfg.scenarios.includes('shoal-cold'),
        limitFactor: cfg.limitFactor,
        ...(cfg.wanCut === undefined ? {} : { cut: cfg.wanCut }),
      },
      (msg) => log(`sites: ${msg}`),
    )
    const md = `# Simulated edge sites\n\n\`${command}\`\n\n${sitesMarkdown(results, cfg.sites, imageBytesOf(params))}`
    await mkdir(join(outDir, 'sites'), { recursive: true })
    await writeFile(join(outDir, 'sites', 'sites.md'), md)
    const json = results.map(({ run, ...r }) => ({ ...r, nodes: run.nodes, bytesReceived: run.bytesReceived }))
    await writeFile(
      join(outDir, 'sites', 'sites.json'),
      `${JSON.stringify({ command, params, results: json }, null, 2)}\n`,
    )
    process.stdout.write(`${md}\nWritten to ${outDir}/sites/\n`)
    return 0
  }
  if (cfg.compare !== undefined) {
    const real = parseFleetReport(await readFile(cfg.compare, 'utf8'))
    // Reports from before the fleet recorded its chunk size ran the then-default 4 MiB unless a seeder flag said.
    const recorded = real.config as Partial<typeof real.config>
    const realChunk = recorded.swarmChunkBytes ?? chunkSizeOf(recorded.seederFlags ?? [], 4 * 1024 * 1024)
    const params: SimParams = {
      ...cfg.base,
      chunkBytes: cfg.chunkGiven ? cfg.base.chunkBytes : realChunk,
      // Reports from before the fleet recorded it ran the agent's then-fixed 3 slots unless an agent flag said.
      uploadSlots: cfg.uploadSlotsGiven
        ? cfg.base.uploadSlots
        : (recorded.agentUploadSlots ?? uploadSlotsOf(recorded.agentFlags ?? [], 3)),
      nodes: real.config.nodes,
      links: real.config.links,
      blobBytes: real.image.blobs.map((b) => b.size),
      manifestBytes: real.image.bytes - real.image.blobs.reduce((n, b) => n + b.size, 0),
      limitMs: 0,
    }
    const scenarios = cfg.scenarios.filter((s) =>
      real.scenarios.some((x) => x.name === s && x.completion !== undefined),
    )
    const r = runSize(cfg, params, scenarios, command)
    await write(join(outDir, 'compare'), r)
    const table = comparisonMarkdown(compareReports(real, r))
    await writeFile(join(outDir, 'compare', 'compare.md'), `# Simulator vs ${cfg.compare}\n\n${table}`)
    process.stdout.write(
      `${simSummaryMarkdown(r)}\n## Simulator vs real fleet (${cfg.compare})\n\n${table}\nWritten to ${outDir}/compare/\n`,
    )
    return 0
  }
  const { blobBytes, manifestBytes } = imageBlobs(cfg.imageMib, cfg.layers)
  const reports: SimReport[] = []
  for (const nodes of cfg.sizes) {
    const r = runSize(cfg, { ...cfg.base, nodes, blobBytes, manifestBytes, limitMs: 0 }, cfg.scenarios, command)
    await write(join(outDir, `N${nodes}`), r)
    process.stdout.write(`${simSummaryMarkdown(r)}\n`)
    reports.push(r)
  }
  const sweep = sweepMarkdown(reports)
  await writeFile(join(outDir, 'sweep.md'), `# Simulated fleet sweep\n\n\`${command}\`\n\n${sweep}`)
  process.stdout.write(
    `## Sweep\n\n${sweep}\nWritten to ${outDir}/ (N<size>/report.{json,svg}, summary.md; sweep.md)\n`,
  )
  return 0
}

process.exitCode = await main(process.argv.slice(2))
