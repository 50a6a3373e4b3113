import { parseFlags } from '../args.ts'
import { resolve } from 'node:path'
import { DEFAULT_CHUNK_SIZE_BYTES } from '../../shared/chunks/index.ts'
import { parseBytes } from '../../shared/config/index.ts'
import { DEFAULT_AGENT_UPLOAD_SLOTS } from '../../shared/swarm/protocol/index.ts'
import { BenchUsageError } from './errors.ts'
import {
  parseSiteShape,
  parseWanCut,
  SITE_OPTIONS,
  SITE_USAGE,
  siteNodeCount,
  type SiteShape,
  type WanCut,
  WAN_CUT_USAGE,
} from './sites.ts'

export const SCENARIO_NAMES = [
  'direct',
  'cache',
  'shoal-cold',
  'shoal-preheated',
  'shoal-sites',
  'shoal-seederless',
] as const
export type ScenarioName = (typeof SCENARIO_NAMES)[number]

/** What runs without `--scenarios`: a flat fleet has no sites to tell its agents; an edge-site fleet compares
 * the flat swarm (`shoal-cold`: agents without `--site`) with the site-aware one. */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = ['direct', 'cache', 'shoal-cold', 'shoal-preheated']
export const DEFAULT_SITE_SCENARIOS: readonly ScenarioName[] = ['direct', 'cache', 'shoal-cold', 'shoal-sites']

export type BenchMode = 'quick' | 'full'

/** Link rates in megabits per second (10^6 bit/s, as tc reads `mbit`). The origin's downlink is never shaped. */
export interface LinkRates {
  readonly originUp: number
  readonly cacheUp: number
  readonly cacheDown: number
  readonly seederUp: number
  readonly seederDown: number
  readonly nodeUp: number
  readonly nodeDown: number
}

export interface ImageSpec {
  readonly name: string
  readonly tag: string
  readonly layers: number
  /** Payload per layer; the blobs come out a little larger (tar headers, config). */
  readonly layerBytes: number
  readonly seed: string
}

export interface BenchConfig {
  readonly mode: BenchMode
  readonly nodes: number
  /** Edge sites (`--sites`): `nodes` is then sites × siteNodes. Undefined: one flat fleet. */
  readonly sites: SiteShape | undefined
  /** `--wan-cut`: one site's WAN link taken down for a while during every rollout. */
  readonly wanCut?: WanCut
  readonly image: ImageSpec
  readonly links: LinkRates
  readonly scenarios: readonly ScenarioName[]
  /** Parent of the per-run `<timestamp>/` result folders. */
  readonly outDir: string
  /** A node still pulling after this long is killed and counted as failed. */
  readonly pullTimeoutS: number
  /** Interval of the CPU and link-counter samples taken during a rollout. */
  readonly sampleMs: number
  /** `--cpu-prof`: Shoal's daemons run under `node --cpu-prof`. */
  readonly cpuProf: boolean
  /** The `shoal` command the Shoal scenarios run (this checkout's by default). */
  readonly shoalBin: string
  /** Extra flags for every `shoal agent` (e.g. `--stall-timeout=60000`), to try a setting; none by default. */
  readonly agentFlags: readonly string[]
  /** Extra flags for the `shoal seeder` (e.g. `--chunk-size=1MiB`); none by default. */
  readonly seederFlags: readonly string[]
  /** The swarm's chunk size in this run: the seeder's `--chunk-size` if passed, else Shoal's default. */
  readonly swarmChunkBytes: number
  /** Chunk uploads each agent serves at once in this run: its `--upload-slots` if passed, else Shoal's default. */
  readonly agentUploadSlots: number
}

const MIB = 1024 * 1024
const DEFAULT_SHOAL_BIN = new URL('../../bin/shoal.js', import.meta.url).pathname

interface Defaults {
  readonly nodes: number
  readonly imageMib: number
  readonly layers: number
  readonly links: LinkRates
}

/**
 * Quick: a developer's smoke run (about 1.5 minutes with all four scenarios). Full: the fleet at the
 * size this 2-core machine sustains (bench/RESULTS.md says how that was found).
 *
 * The whole fleet shares the machine's CPUs: every byte a node receives in a Shoal rollout is relayed by
 * Node processes (noise encryption, yamux, SHA-256, disk) and written by skopeo, and the machine relays
 * only ~15-25 MB/s of that in total. N·D_n above that makes the Shoal scenarios CPU-bound; the direct
 * scenario takes N·S/U_o. Node links match the origin uplink, so the origin is thin against the fleet
 * (N·D_n) and a perfect swarm would beat direct pulls N-fold; the seeder and the site cache get 4× a
 * node's link, as servers in a rack would. Full: direct ≈ 8 × 268 MB / 12.5 MB/s ≈ 172 s, and the whole
 * run about 12 minutes.
 */
export const DEFAULTS: Readonly<Record<BenchMode, Defaults>> = {
  quick: {
    nodes: 4,
    imageMib: 32,
    layers: 4,
    links: { originUp: 80, cacheUp: 320, cacheDown: 320, seederUp: 320, seederDown: 320, nodeUp: 80, nodeDown: 80 },
  },
  full: {
    nodes: 8,
    imageMib: 256,
    layers: 4,
    links: {
      originUp: 100,
      cacheUp: 400,
      cacheDown: 400,
      seederUp: 400,
      seederDown: 400,
      nodeUp: 100,
      nodeDown: 100,
    },
  },
}

/** Addresses are planned for this many nodes (169.254.2.1 … 169.254.5.250). */
export const MAX_NODES = 1000

export const USAGE = `usage: npm run bench -- [flags]   (needs root: network namespaces and tc)

  --quick                 small fleet and image, about 1.5 minutes (default: the full run, about 10)
  --nodes N               nodes in the fleet (quick ${DEFAULTS.quick.nodes}, full ${DEFAULTS.full.nodes})
  --image-mib M           image payload in MiB (quick ${DEFAULTS.quick.imageMib}, full ${DEFAULTS.full.imageMib})
  --layers L              layers the payload is split into (default ${DEFAULTS.full.layers})
${SITE_USAGE}
${WAN_CUT_USAGE}
  --origin-up MBIT        origin uplink U_o
  --cache-up MBIT         pull-through cache host uplink
  --cache-down MBIT       pull-through cache host downlink
  --seeder-up MBIT        seeder uplink U_s
  --seeder-down MBIT      seeder downlink
  --node-up MBIT          node uplink U_n
  --node-down MBIT        node downlink D_n
  --scenarios LIST        comma-separated subset of ${SCENARIO_NAMES.join(',')} (default
                          ${DEFAULT_SCENARIOS.join(',')}; with --sites ${DEFAULT_SITE_SCENARIOS.join(',')})
  --seed TEXT             image content seed (default shoal-bench)
  --out DIR               results parent folder (default bench/results)
  --pull-timeout S        kill a node's pull after S seconds (default: 3x the direct rollout's estimate + 60)
  --sample-ms MS          CPU and counter sampling interval (default 500)
  --shoal-bin FILE        the shoal command to run (default: this checkout's bin/shoal.js)
  --agent-flag=FLAG       extra flag for every shoal agent, repeatable (e.g. --agent-flag=--stall-timeout=60000)
  --seeder-flag=FLAG      extra flag for the shoal seeder, repeatable (e.g. --seeder-flag=--chunk-size=1MiB)
  --cpu-prof              run Shoal's agents and seeder under node --cpu-prof; each one's top frames over the
                          rollout go to profiles.md beside summary.md (slower: compare with runs that had it)
  --help                  this text`

function positiveNumber(flag: string, raw: string | undefined, fallback: number, integer = false): number {
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new BenchUsageError(
      `--${flag}: want a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(raw)}`,
    )
  }
  return value
}

export function parseScenarios(raw: string | undefined, sites = false): readonly ScenarioName[] {
  if (raw === undefined) return sites ? DEFAULT_SITE_SCENARIOS : DEFAULT_SCENARIOS
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (names.length === 0) throw new BenchUsageError('--scenarios: empty list')
  for (const n of names) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(n)) {
      throw new BenchUsageError(`--scenarios: unknown ${JSON.stringify(n)} (known: ${SCENARIO_NAMES.join(', ')})`)
    }
  }
  if (!sites && names.includes('shoal-sites')) throw new BenchUsageError('--scenarios: shoal-sites needs --sites')
  // Report order is fixed so runs compare side by side whatever order the flag used.
  return SCENARIO_NAMES.filter((n) => names.includes(n))
}

/**
 * The direct rollout's fluid time: every node's copy leaves the origin's uplink and, with edge sites, every
 * node's copy of a site crosses that site's WAN link.
 */
export function directEstimateS(nodes: number, imageBytes: number, links: LinkRates, sites?: SiteShape): number {
  const originBps = (links.originUp * 1e6) / 8
  const nodeBps = (links.nodeDown * 1e6) / 8
  const wanS = sites === undefined ? 0 : (sites.siteNodes * imageBytes) / ((sites.wanMbit * 1e6) / 8)
  return Math.max((nodes * imageBytes) / originBps, imageBytes / nodeBps, wanS)
}

/** Flags to a frozen config; `'help'` when asked for the usage. Throws BenchUsageError on a bad flag. */
export function parseBenchArgs(argv: readonly string[]): BenchConfig | 'help' {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (err) {
    throw new BenchUsageError(err instanceof Error ? err.message : String(err))
  }
  const v = parsed.values
  if (v.help === true) return 'help'
  if (parsed.positionals.length > 0) throw new BenchUsageError(`unexpected argument ${parsed.positionals[0]}`)
  const mode: BenchMode = v.quick === true ? 'quick' : 'full'
  const d = DEFAULTS[mode]
  const sites = parseSiteShape(v, v.nodes !== undefined)
  const nodes = sites === undefined ? positiveNumber('nodes', v.nodes, d.nodes, true) : siteNodeCount(sites)
  if (nodes > MAX_NODES) throw new BenchUsageError(`--nodes: at most ${MAX_NODES}`)
  const layers = positiveNumber('layers', v.layers, d.layers, true)
  const imageMib = positiveNumber('image-mib', v['image-mib'], d.imageMib)
  const layerBytes = Math.floor((imageMib * MIB) / layers)
  if (layerBytes < 1) throw new BenchUsageError('--image-mib: too small for that many layers')
  const links: LinkRates = {
    originUp: positiveNumber('origin-up', v['origin-up'], d.links.originUp),
    cacheUp: positiveNumber('cache-up', v['cache-up'], d.links.cacheUp),
    cacheDown: positiveNumber('cache-down', v['cache-down'], d.links.cacheDown),
    seederUp: positiveNumber('seeder-up', v['seeder-up'], d.links.seederUp),
    seederDown: positiveNumber('seeder-down', v['seeder-down'], d.links.seederDown),
    nodeUp: positiveNumber('node-up', v['node-up'], d.links.nodeUp),
    nodeDown: positiveNumber('node-down', v['node-down'], d.links.nodeDown),
  }
  const wanCut = parseWanCut(v['wan-cut'], sites)
  // A cut WAN link holds its site's rollout up for as long as it is down.
  const estimate = directEstimateS(nodes, layers * layerBytes, links, sites) + (wanCut?.forS ?? 0)
  return Object.freeze({
    mode,
    nodes,
    sites,
    ...optional('wanCut', wanCut),
    image: Object.freeze({
      name: 'bench/sample',
      tag: 'v1',
      layers,
      layerBytes,
      seed: v.seed ?? 'shoal-bench',
    }),
    links: Object.freeze(links),
    scenarios: parseScenarios(v.scenarios, sites !== undefined),
    outDir: v.out ?? 'bench/results',
    pullTimeoutS: positiveNumber('pull-timeout', v['pull-timeout'], Math.ceil(3 * estimate + 60)),
    sampleMs: positiveNumber('sample-ms', v['sample-ms'], 500, true),
    shoalBin: resolve(v['shoal-bin'] ?? DEFAULT_SHOAL_BIN),
    agentFlags: Object.freeze([...(v['agent-flag'] ?? [])]),
    seederFlags: Object.freeze([...(v['seeder-flag'] ?? [])]),
    swarmChunkBytes: chunkSizeOf(v['seeder-flag'] ?? []),
    agentUploadSlots: uploadSlotsOf(v['agent-flag'] ?? []),
    cpuProf: v['cpu-prof'] === true,
  })
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V }
}

/** The agents' `--upload-slots` among `agentFlags` (the last one wins), else `fallback`. */
export function uploadSlotsOf(agentFlags: readonly string[], fallback = DEFAULT_AGENT_UPLOAD_SLOTS): number {
  let slots = fallback
  for (const f of agentFlags) {
    const m = /^--upload-slots=(.+)$/.exec(f)
    if (m === null) continue
    const n = Number(m[1])
    if (!Number.isInteger(n) || n < 1) throw new BenchUsageError(`--agent-flag=${f}: not a positive integer`)
    slots = n
  }
  return slots
}

/** The seeder's `--chunk-size` among `seederFlags` (the last one wins), else `fallback`. */
export function chunkSizeOf(seederFlags: readonly string[], fallback = DEFAULT_CHUNK_SIZE_BYTES): number {
  let bytes = fallback
  for (const f of seederFlags) {
    const m = /^--chunk-size=(.+)$/.exec(f)
    if (m === null) continue
    const parsed = parseBytes(m[1]!)
    if (parsed === undefined) throw new BenchUsageError(`--seeder-flag=${f}: not a size`)
    bytes = parsed
  }
  return bytes
}

const TEXT = { type: 'string' } as const

/** Flags that shape the fleet and its image: shared with the simulator (bench/sim), so both take the same knobs. */
export const FLEET_SHAPE_OPTIONS = {
  quick: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  nodes: TEXT,
  ...SITE_OPTIONS,
  'image-mib': TEXT,
  layers: TEXT,
  'origin-up': TEXT,
  'seeder-up': TEXT,
  'seeder-down': TEXT,
  'node-up': TEXT,
  'node-down': TEXT,
  scenarios: TEXT,
  seed: TEXT,
  out: TEXT,
} as const

function parse(argv: readonly string[]) {
  return parseFlags(argv, {
    ...FLEET_SHAPE_OPTIONS,
    'cache-up': TEXT,
    'cache-down': TEXT,
    'wan-cut': TEXT,
    'pull-timeout': TEXT,
    'sample-ms': TEXT,
    'shoal-bin': TEXT,
    'agent-flag': { type: 'string', multiple: true },
    'seeder-flag': { type: 'string', multiple: true },
    'cpu-prof': { type: 'boolean' },
  } as const)
}
