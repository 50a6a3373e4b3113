import { BenchUsageError } from './errors.ts'

/**
 * Edge sites in a benchmark: K sites of M nodes each, every site behind its own WAN link to the core
 * (origin, seeder, pull-through cache). The fleet (`npm run bench`) and the simulator (`npm run bench:sim`)
 * take the same three flags, parsed here once.
 */
export interface SiteShape {
  /** K */
  readonly sites: number
  /** M: nodes per site; the fleet has K × M nodes. */
  readonly siteNodes: number
  /** Each site's WAN link in megabits per second, both directions (tc's `mbit`). */
  readonly wanMbit: number
}

const TEXT = { type: 'string' } as const

/** The site flags, spread into both benches' option tables. */
export const SITE_OPTIONS = {
  sites: TEXT,
  'site-nodes': TEXT,
  wan: TEXT,
} as const

export const SITE_USAGE = `  --sites K               edge sites, each on its own bridge behind a shaped WAN link to the core (origin,
                          seeder, cache); needs --site-nodes and --wan; the fleet has K x M nodes (--nodes refused)
  --site-nodes M          nodes per site
  --wan MBIT              each site's WAN link, both directions`

export const WAN_CUT_USAGE = `  --wan-cut SITE:AT:FOR   take SITE's WAN link down AT seconds into every rollout, for FOR seconds (e.g.
                          site-0:5:20); the report gives each site's WAN bytes, so what the cut cost shows`

/** `--wan-cut`: which site's WAN link goes down, when (seconds after the rollout starts) and for how long. */
export interface WanCut {
  readonly site: string
  readonly atS: number
  readonly forS: number
}

/** When a `--wan-cut` really took the link down and brought it back, in seconds from the rollout's start. */
export interface WanCutDone extends WanCut {
  /** Absent: the rollout was over before the cut was due (or the link could not be taken down). */
  readonly downAtS?: number
  readonly upAtS?: number
  /** Why the link could not be taken down or brought back. */
  readonly error?: string
}

/** `SITE:AT_S:FOR_S` → a WanCut for a site of `shape`; undefined when the flag is absent. */
export function parseWanCut(raw: string | undefined, shape: SiteShape | undefined): WanCut | undefined {
  if (raw === undefined) return undefined
  if (shape === undefined) throw new BenchUsageError('--wan-cut: needs --sites')
  const m = /^(site-(\d+)):([^:]+):([^:]+)$/.exec(raw)
  if (m === null)
    throw new BenchUsageError(`--wan-cut: want SITE:AT_S:FOR_S (e.g. site-0:5:20), got ${JSON.stringify(raw)}`)
  const [, site, k, at, len] = m as unknown as [string, string, string, string, string]
  if (Number(k) >= shape.sites)
    throw new BenchUsageError(`--wan-cut: no ${site} (sites are site-0 … site-${shape.sites - 1})`)
  const atS = Number(at)
  const forS = Number(len)
  if (!(Number.isFinite(atS) && atS >= 0))
    throw new BenchUsageError(`--wan-cut: start ${JSON.stringify(at)} is not seconds`)
  if (!(Number.isFinite(forS) && forS > 0))
    throw new BenchUsageError(`--wan-cut: length ${JSON.stringify(len)} is not seconds`)
  return Object.freeze({ site, atS, forS })
}

function positiveInteger(flag: string, raw: string): number {
  const v = Number(raw)
  if (!Number.isInteger(v) || v <= 0)
    throw new BenchUsageError(`--${flag}: want a positive integer, got ${JSON.stringify(raw)}`)
  return v
}

/**
 * The site shape of a run, or `undefined` for a flat fleet. `nodesGiven`: whether `--nodes` was passed,
 * which a site run refuses (its size is K × M).
 */
export function parseSiteShape(
  values: {
    readonly sites?: string | undefined
    readonly 'site-nodes'?: string | undefined
    readonly wan?: string | undefined
  },
  nodesGiven: boolean,
): SiteShape | undefined {
  const { sites, wan } = values
  const siteNodes = values['site-nodes']
  if (sites === undefined) {
    if (siteNodes !== undefined) throw new BenchUsageError('--site-nodes: needs --sites')
    if (wan !== undefined) throw new BenchUsageError('--wan: needs --sites')
    return undefined
  }
  if (nodesGiven) throw new BenchUsageError('--nodes: not with --sites (the fleet is --sites x --site-nodes)')
  if (siteNodes === undefined) throw new BenchUsageError('--sites: needs --site-nodes')
  if (wan === undefined) throw new BenchUsageError('--sites: needs --wan')
  const w = Number(wan)
  if (!Number.isFinite(w) || w <= 0)
    throw new BenchUsageError(`--wan: want a positive number, got ${JSON.stringify(wan)}`)
  return Object.freeze({
    sites: positiveInteger('sites', sites),
    siteNodes: positiveInteger('site-nodes', siteNodes),
    wanMbit: w,
  })
}

export function siteNodeCount(shape: SiteShape): number {
  return shape.sites * shape.siteNodes
}

/** The site a node belongs to, by its index in the fleet (sites are filled in order): `site-0`, `site-1`, … */
export function siteOfNode(shape: SiteShape, nodeIndex: number): string {
  return `site-${Math.floor(nodeIndex / shape.siteNodes)}`
}

export type SiteBoundTerm = 'wan-download' | 'core-and-wan-upload'

export interface SiteBound {
  readonly seconds: number
  readonly limitedBy: SiteBoundTerm
  /** S / WAN down: every site must receive the image through its WAN link once. */
  readonly wanDownloadS: number
  /** K·S / (U_core + Σ WAN up): K copies must leave the core or a site's uplink (sites may relay to each other). */
  readonly coreAndWanUploadS: number
}

/**
 * The site bound `T*_site = max(S / WAN_down, K·S / (U_core + Σ_k WAN_up))`, rates in bytes per second.
 * Each site's WAN link carries `wanDownBps` into the site and `wanUpBps` out of it (the benches' `--wan` sets
 * both; they are apart here for asymmetric links). With symmetric links the second term never binds: K·S /
 * (U_core + K·W) < S / W, since sites may relay to each other.
 */
export function siteBound(input: {
  readonly imageBytes: number
  readonly sites: number
  readonly wanDownBps: number
  readonly wanUpBps: number
  readonly coreUpBps: number
}): SiteBound {
  for (const [k, v] of Object.entries(input)) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`siteBound: ${k} must be positive, got ${v}`)
  }
  const { imageBytes: s, sites: k, wanDownBps, wanUpBps, coreUpBps } = input
  const wanDownloadS = s / wanDownBps
  const coreAndWanUploadS = (k * s) / (coreUpBps + k * wanUpBps)
  return wanDownloadS >= coreAndWanUploadS
    ? { seconds: wanDownloadS, limitedBy: 'wan-download', wanDownloadS, coreAndWanUploadS }
    : { seconds: coreAndWanUploadS, limitedBy: 'core-and-wan-upload', wanDownloadS, coreAndWanUploadS }
}
