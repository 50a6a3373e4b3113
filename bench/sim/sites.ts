/**
 * Edge sites in the simulator (`npm run bench:sim -- --sites K --site-nodes M --wan MBIT`): K sites of M nodes,
 * each site's LAN (the nodes' own links, as in a flat fleet) behind one WAN link, both directions at `--wan`, to the
 * core (origin and seeder). The core's uplink is the seeder's (`--seeder-up`) for Shoal and the origin's
 * (`--origin-up`) for direct pulls. Scenarios: direct pulls; Shoal flat (the same topology, nobody knows a site);
 * Shoal with sites (`--site` on every agent). Reported per scenario: bytes across each WAN link in and out / S, and
 * completion against T*_site (siteBound) with the term that binds.
 */
import { mbitToBps } from '../fleet/bound.ts'
import { type SiteBound, siteBound, type SiteShape } from '../fleet/sites.ts'
import { percentile } from '../fleet/stats.ts'
import { simulate, type SimRun } from './run.ts'
import type { SimParams, SimScenario, SimSites } from './world.ts'

export type SiteScenario = 'direct' | 'shoal-flat' | 'shoal-sites'
export const SITE_SCENARIOS: readonly SiteScenario[] = ['direct', 'shoal-flat', 'shoal-sites']

export interface SiteScenarioResult {
  readonly scenario: SiteScenario
  /** Cold seeder, or preheated. */
  readonly seeder: 'cold' | 'preheated'
  readonly nodesOk: number
  readonly nodes: number
  readonly bound: SiteBound
  /** Completion over T*_site: p50, p99, slowest. */
  readonly p50: number
  readonly p99: number
  readonly max: number
  /** WAN bytes into / out of each site, over S. */
  readonly wanIn: readonly number[]
  readonly wanOut: readonly number[]
  readonly fallbacks: number
  /**
   * Each site's WAN downlink use from the start until its last node finished: bytes in over what the link could
   * carry in that time (1 = full all along). What binds when completion misses T*_site.
   */
  readonly wanBusy: readonly number[]
  readonly run: SimRun
}

export interface SiteRunInput {
  readonly params: Omit<SimParams, 'sites' | 'limitMs'>
  readonly shape: SiteShape
  readonly scenarios: readonly SiteScenario[]
  readonly preheated: boolean
  readonly limitFactor: number
  readonly cut?: SimSites['cut']
}

/** S as the bound counts it: the image's bytes (manifest and blobs). */
export function imageBytesOf(p: Pick<SimParams, 'manifestBytes' | 'blobBytes'>): number {
  return p.manifestBytes + p.blobBytes.reduce((a, b) => a + b, 0)
}

export function runSites(input: SiteRunInput, log: (msg: string) => void = () => {}): SiteScenarioResult[] {
  const { params, shape } = input
  const S = imageBytesOf(params)
  const out: SiteScenarioResult[] = []
  for (const scenario of input.scenarios) {
    const coreMbit = scenario === 'direct' ? params.links.originUp : params.links.seederUp
    const bound = siteBound({
      imageBytes: S,
      sites: shape.sites,
      wanDownBps: mbitToBps(shape.wanMbit),
      wanUpBps: mbitToBps(shape.wanMbit),
      coreUpBps: mbitToBps(coreMbit),
    })
    const sim: SimScenario = scenario === 'direct' ? 'direct' : input.preheated ? 'shoal-preheated' : 'shoal-cold'
    const sites: SimSites = {
      count: shape.sites,
      wanMbit: shape.wanMbit,
      aware: scenario === 'shoal-sites',
      ...(input.cut === undefined || scenario === 'direct' ? {} : { cut: input.cut }),
    }
    const limitMs = input.limitFactor * bound.seconds * 1000 + (input.cut === undefined ? 0 : input.cut.toMs)
    log(`${scenario}: T*_site ${bound.seconds.toFixed(1)} s (${bound.limitedBy}), simulating…`)
    const run = simulate(sim, { ...params, sites, limitMs })
    const secs = run.nodes.map((n) => n.seconds / bound.seconds)
    const wan = run.wan ?? { inBytes: [], outBytes: [] }
    const perSite = run.nodes.length / shape.sites
    const wanBytesPerS = mbitToBps(shape.wanMbit) * params.wireEfficiency
    const wanBusy = wan.inBytes.map((bytes, k) => {
      const lastS = Math.max(...run.nodes.slice(k * perSite, (k + 1) * perSite).map((n) => n.seconds))
      return bytes / (wanBytesPerS * lastS)
    })
    out.push({
      scenario,
      seeder: input.preheated ? 'preheated' : 'cold',
      nodesOk: run.nodes.filter((n) => n.ok).length,
      nodes: run.nodes.length,
      bound,
      p50: percentile(secs, 50),
      p99: percentile(secs, 99),
      max: Math.max(...secs),
      wanIn: wan.inBytes.map((b) => b / S),
      wanOut: wan.outBytes.map((b) => b / S),
      fallbacks: run.shoal?.fallbacks ?? 0,
      wanBusy,
      run,
    })
    log(
      `${scenario}: ${out.at(-1)!.nodesOk}/${run.nodes.length} done, ${run.events} events, ${run.wallS.toFixed(1)} s wall`,
    )
  }
  return out
}

function spread(v: readonly number[]): string {
  if (v.length === 0) return '–'
  const sorted = [...v].sort((a, b) => a - b)
  return `${sorted.at(-1)!.toFixed(2)} (min ${sorted[0]!.toFixed(2)}, median ${percentile(sorted, 50).toFixed(2)})`
}

function busy(v: readonly number[]): string {
  if (v.length === 0) return '–'
  const sorted = [...v].sort((a, b) => a - b)
  return `${(100 * sorted[0]!).toFixed(0)}% (${(100 * percentile(sorted, 50)).toFixed(0)}%)`
}

/** One row per scenario: WAN bytes per site / S (worst, then spread), completion / T*_site. */
export function sitesMarkdown(results: readonly SiteScenarioResult[], shape: SiteShape, S: number): string {
  const lines = [
    `${shape.sites} sites × ${shape.siteNodes} nodes, WAN ${shape.wanMbit} Mbit/s each way, S = ${(S / 2 ** 20).toFixed(1)} MiB`,
    '',
    '| scenario | seeder | nodes done | T*_site (binds) | WAN in per site / S: worst (min, median) | WAN out per site / S: worst | WAN in busy until the site is done: least (median) | p50 / T* | p99 / T* | slowest / T* | origin fallbacks |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ]
  for (const r of results) {
    lines.push(
      `| ${r.scenario} | ${r.seeder} | ${r.nodesOk}/${r.nodes} | ${r.bound.seconds.toFixed(1)} s (${r.bound.limitedBy}) | ${spread(r.wanIn)} | ${r.wanOut.length === 0 ? '–' : Math.max(...r.wanOut).toFixed(2)} | ${busy(r.wanBusy)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(2)} | ${r.fallbacks} |`,
    )
  }
  return `${lines.join('\n')}\n`
}
