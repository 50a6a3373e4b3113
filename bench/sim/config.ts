import { parseFlags } from '../args.ts'
import { DEFAULT_CHUNK_SIZE_BYTES } from '../../shared/chunks/index.ts'
import { MAX_TRACKED_PEERS } from '../../shared/swarm/have-tracker.ts'
import { DEFAULT_AGENT_UPLOAD_SLOTS, DEFAULT_MAX_CONCURRENT_UPLOADS } from '../../shared/swarm/protocol/index.ts'
import {
  DEFAULT_INFLIGHT_TOTAL_MS,
  DEFAULT_NODE_INFLIGHT,
  DEFAULT_SEED_COPIES,
} from '../../shared/swarm/scheduler/index.ts'
import { AGENT_WAN_UPLOADS, SEEDER_UPLOADS_PER_SITE, SLOT_WAIT_MS } from '../../shared/swarm/serve/index.ts'
import { DEFAULTS, FLEET_SHAPE_OPTIONS, type LinkRates } from '../fleet/config.ts'
import { BenchUsageError } from '../fleet/errors.ts'
import { parseSiteShape, SITE_USAGE, siteNodeCount, type SiteShape } from '../fleet/sites.ts'
import { MSS_BYTES, HEADER_BYTES_PER_PACKET, type SimParams, type SimScenario } from './world.ts'

export const SIM_SCENARIOS: readonly SimScenario[] = ['direct', 'shoal-cold', 'shoal-preheated']

export interface SimConfig {
  readonly mode: 'quick' | 'full'
  /** One report per fleet size. */
  readonly sizes: readonly number[]
  /** Edge sites (`--sites`): one size, sites × siteNodes. Undefined: flat fleets. */
  readonly sites: SiteShape | undefined
  readonly imageMib: number
  readonly layers: number
  readonly scenarios: readonly SimScenario[]
  readonly outDir: string
  readonly compare: string | undefined
  /** `--chunk-mib` was given (else a comparison takes the real run's chunk size). */
  readonly chunkGiven: boolean
  readonly uploadSlotsGiven: boolean
  /** Everything but `nodes` (set per size) and the blob list (from the image, or a real report). */
  readonly base: Omit<SimParams, 'nodes' | 'blobBytes' | 'manifestBytes' | 'limitMs'>
  /** A run is cut off after this many times its slowest scenario bound; unfinished nodes count as failed. */
  readonly limitFactor: number
  /** Edge sites: one site's WAN link down for a while mid-rollout (`--wan-cut`). */
  readonly wanCut: { readonly site: number; readonly fromMs: number; readonly toMs: number } | undefined
}

const MIB = 1024 * 1024
/** What the fleet's generated image adds to each layer's payload: a tar header and the end-of-archive blocks. */
export const TAR_OVERHEAD_BYTES = 3 * 512
/** A generated image's config blob and manifest (measured sizes are taken from a real report with --compare). */
export const CONFIG_BLOB_BYTES = 600
export function manifestBytesFor(layers: number): number {
  return 400 + 200 * layers
}

export const QUICK_SIZES: readonly number[] = [16, 100]
export const FULL_SIZES: readonly number[] = [16, 100, 1000, 10000]

export const SIM_USAGE = `usage: npm run bench:sim -- [flags]   (no root needed: nothing real runs)

  --quick                 small fleets (${QUICK_SIZES.join(', ')}) and the fleet's quick image and links
  --nodes LIST            fleet sizes, comma-separated (quick ${QUICK_SIZES.join(',')}; full ${FULL_SIZES.join(',')})
${SITE_USAGE}
  --wan-cut K,FROM,SECS   with --sites: site K's WAN link is down from FROM s for SECS s (both directions)
  --image-mib M           image payload in MiB (quick ${DEFAULTS.quick.imageMib}, full ${DEFAULTS.full.imageMib})
  --layers L              layers (default ${DEFAULTS.full.layers})
  --chunk-mib C           swarm chunk size in MiB (default ${DEFAULT_CHUNK_SIZE_BYTES / MIB}, as agent and seeder; with
                          --compare: the real run's, and 4 for reports that predate recording it)
  --origin-up, --seeder-up, --seeder-down, --node-up, --node-down MBIT   links, as the fleet's flags
  --scenarios LIST        subset of ${SIM_SCENARIOS.join(',')} (default all)
  --rtt-ms MS             round trip between any two hosts (default 20: tbf queues of loaded links)
  --wire-efficiency F     payload share of a link's rate (default ${(MSS_BYTES / (MSS_BYTES + HEADER_BYTES_PER_PACKET)).toFixed(3)}: 1448/1514)
  --upload-slots K        chunk uploads an agent serves at once (default ${DEFAULT_AGENT_UPLOAD_SLOTS}, as the agent; with --compare:
                          the real run's)
  --seeder-upload-slots K chunk uploads the seeder serves at once (default ${DEFAULT_MAX_CONCURRENT_UPLOADS}, as the seeder)
  --seeder-uploads-per-site K  with sites known: the seeder's uploads at once into each site (default
                          ${SEEDER_UPLOADS_PER_SITE}, as the seeder; --seeder-upload-slots is then for agents in no site)
  --seeder-once-per-site B  with sites known: the seeder answers a site's other members busy for a chunk on its
                          way into the site (default true, as the seeder; false = every asker served)
  --wan-upload-slots K    with sites known: an agent's uploads at once to peers outside its site (default
                          ${AGENT_WAN_UPLOADS}, as the agent; --upload-slots is then for its own site's peers)
  --slot-wait-ms MS       how long a request refused an upload slot waits for one before \`busy\` (default
                          ${SLOT_WAIT_MS}, as agent and seeder; 0 = \`busy\` at once, as before)
  --max-busy-backoff-ms MS  each busy in a row from a peer doubles its pause up to this (default: the
                          scheduler's, no growth)
  --send-buffer-kib B     bytes a sender queues past its link before the upload slot frees (default 0)
  --inflight-per-peer K   the scheduler's pipeline per peer (default: its own, 4 growing to 16)
  --inflight-total-ms MS  transfer time a download's requests may queue at its receive rate (default: the
                          scheduler's, ${DEFAULT_INFLIGHT_TOTAL_MS}; 0 = no such cap)
  --node-inflight K       chunk requests an agent keeps in flight over all its blobs (default ${DEFAULT_NODE_INFLIGHT},
                          as the agent's ReceiveBudget; 0 = none, each blob bounded only by its own cap, as before)
  --seed-copies K         copies of a chunk the seeder hands out while its own measure of its uplink has room
                          (SendMeter), the first included (default ${DEFAULT_SEED_COPIES}, as the seeder: each chunk once)
  --offers F              share of the agents (0..1) that offer their chunks to peers lacking them instead of
                          waiting to be asked (OfferPlanner; not in the product's wire yet; default 0 = pull only)
  --offer-ahead K         offers an offering agent keeps out beyond its free upload slots (default 0)
  --offer-full-ms MS      a receiver that answered an offer "full" is offered nothing for MS, or until a have
                          update from it (default: 250 ms, no early end)
  --max-peers P           peers an agent tracks per blob, 0 = no cap (default: the agent's, ${MAX_TRACKED_PEERS})
  --stall-timeout-s S     agent's no-progress timeout before it goes to the origin (default 60, as the agent)
  --lookup-latency-ms MS  DHT lookup latency (default 50)
  --seed N                randomness of the run (default 1)
  --out DIR               results parent folder (default bench/results/sim)
  --compare FILE          a real fleet report.json: simulate its exact configuration and print sim vs real
  --help                  this text`

function num(
  flag: string,
  raw: string | undefined,
  fallback: number,
  opts: { integer?: boolean; zero?: boolean } = {},
) {
  if (raw === undefined) return fallback
  const v = Number(raw)
  if (
    !Number.isFinite(v) ||
    v < 0 ||
    (v === 0 && opts.zero !== true) ||
    (opts.integer === true && !Number.isInteger(v))
  ) {
    throw new BenchUsageError(
      `--${flag}: want a ${opts.zero === true ? 'non-negative' : 'positive'} number, got ${JSON.stringify(raw)}`,
    )
  }
  return v
}

export function parseSimArgs(argv: readonly string[]): SimConfig | 'help' {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (err) {
    throw new BenchUsageError(err instanceof Error ? err.message : String(err))
  }
  const v = parsed.values
  if (v.help === true) return 'help'
  if (parsed.positionals.length > 0) throw new BenchUsageError(`unexpected argument ${parsed.positionals[0]}`)
  const mode = v.quick === true ? 'quick' : 'full'
  const d = DEFAULTS[mode]
  const sites = parseSiteShape(v, v.nodes !== undefined)
  const sizes =
    sites !== undefined
      ? [siteNodeCount(sites)]
      : v.nodes === undefined
        ? mode === 'quick'
          ? QUICK_SIZES
          : FULL_SIZES
        : v.nodes.split(',').map((s) => num('nodes', s.trim(), 0, { integer: true }))
  let scenarios = SIM_SCENARIOS
  if (v.scenarios !== undefined) {
    const names = v.scenarios.split(',').map((s) => s.trim())
    for (const n of names) {
      if (!(SIM_SCENARIOS as readonly string[]).includes(n)) {
        throw new BenchUsageError(
          `--scenarios: the simulator models ${SIM_SCENARIOS.join(', ')}, not ${JSON.stringify(n)}`,
        )
      }
    }
    scenarios = SIM_SCENARIOS.filter((n) => names.includes(n))
  }
  const links: LinkRates = {
    ...d.links,
    originUp: num('origin-up', v['origin-up'], d.links.originUp),
    seederUp: num('seeder-up', v['seeder-up'], d.links.seederUp),
    seederDown: num('seeder-down', v['seeder-down'], d.links.seederDown),
    nodeUp: num('node-up', v['node-up'], d.links.nodeUp),
    nodeDown: num('node-down', v['node-down'], d.links.nodeDown),
  }
  return Object.freeze({
    mode,
    sizes,
    sites,
    imageMib: num('image-mib', v['image-mib'], d.imageMib),
    layers: num('layers', v.layers, d.layers, { integer: true }),
    scenarios,
    outDir: v.out ?? 'bench/results/sim',
    compare: v.compare,
    chunkGiven: v['chunk-mib'] !== undefined,
    uploadSlotsGiven: v['upload-slots'] !== undefined,
    limitFactor: 20,
    wanCut: wanCut(v['wan-cut'], sites),
    base: Object.freeze({
      links: Object.freeze(links),
      chunkBytes: Math.round(num('chunk-mib', v['chunk-mib'], DEFAULT_CHUNK_SIZE_BYTES / MIB) * MIB),
      rttMs: num('rtt-ms', v['rtt-ms'], 20),
      wireEfficiency: Math.min(
        1,
        num('wire-efficiency', v['wire-efficiency'], MSS_BYTES / (MSS_BYTES + HEADER_BYTES_PER_PACKET)),
      ),
      uploadSlots: num('upload-slots', v['upload-slots'], DEFAULT_AGENT_UPLOAD_SLOTS, { integer: true }),
      seederUploadSlots: num('seeder-upload-slots', v['seeder-upload-slots'], DEFAULT_MAX_CONCURRENT_UPLOADS, {
        integer: true,
      }),
      ...(v['seeder-uploads-per-site'] === undefined
        ? {}
        : {
            seederUploadsPerSite: num('seeder-uploads-per-site', v['seeder-uploads-per-site'], 2, { integer: true }),
          }),
      ...(v['seeder-once-per-site'] === undefined
        ? {}
        : { seederOncePerSite: v['seeder-once-per-site'] !== 'false' && v['seeder-once-per-site'] !== '0' }),
      ...(v['wan-upload-slots'] === undefined
        ? {}
        : { wanUploadSlots: num('wan-upload-slots', v['wan-upload-slots'], 1, { integer: true }) }),
      ...(v['max-busy-backoff-ms'] === undefined
        ? {}
        : { maxBusyBackoffMs: num('max-busy-backoff-ms', v['max-busy-backoff-ms'], 250) }),
      slotWaitMs: num('slot-wait-ms', v['slot-wait-ms'], SLOT_WAIT_MS, { zero: true }),
      sendBufferBytes: Math.round(num('send-buffer-kib', v['send-buffer-kib'], 0, { zero: true }) * 1024),
      ...(v['inflight-per-peer'] === undefined
        ? {}
        : { inflightPerPeer: num('inflight-per-peer', v['inflight-per-peer'], 4, { integer: true }) }),
      ...(v['inflight-total-ms'] === undefined
        ? {}
        : { inflightTotalMs: num('inflight-total-ms', v['inflight-total-ms'], 0, { zero: true }) }),
      lookupPeriodMs: 1000,
      lookupLatencyMs: num('lookup-latency-ms', v['lookup-latency-ms'], 50),
      lookupResults: 20,
      dhtReplication: 20,
      provideLatencyMs: 100,
      nodeInflight: num('node-inflight', v['node-inflight'], DEFAULT_NODE_INFLIGHT, { integer: true, zero: true }),
      ...(v.offers === undefined ? {} : { offerShare: offerShare(v.offers) }),
      ...(v['offer-full-ms'] === undefined ? {} : { offerFullMs: num('offer-full-ms', v['offer-full-ms'], 250) }),
      ...(v['offer-ahead'] === undefined
        ? {}
        : { offerAhead: num('offer-ahead', v['offer-ahead'], 0, { integer: true, zero: true }) }),
      seedCopies: num('seed-copies', v['seed-copies'], DEFAULT_SEED_COPIES, { integer: true }),
      maxPeers: num('max-peers', v['max-peers'], MAX_TRACKED_PEERS, { integer: true, zero: true }),
      hints: 16,
      stallTimeoutMs: num('stall-timeout-s', v['stall-timeout-s'], 60) * 1000,
      // The protocol client's request timeout (DEFAULT_CLIENT_REQUEST_TIMEOUT_MS); the agent's 10 s no-byte window
      // never fires on a modelled flow, which always moves.
      chunkDeadlineMs: 30_000,
      // Measured at a real registry (npx node bench/manifests/main.ts): the agent's blob HEADs that authorize each
      // client, 415-419 B each for the 5 blobs of this image; the tag's HEAD, 378 B.
      originControlBytesPerNode: 2091,
      originResolveBytesPerNode: 378,
      seed: num('seed', v.seed, 1, { integer: true, zero: true }),
    }),
  })
}

/** `--offers`: the share of agents that offer chunks, 0..1 (`--offers 1`: all). */
function offerShare(raw: string): number {
  const x = Number(raw)
  if (!(x >= 0 && x <= 1))
    throw new BenchUsageError(`--offers: want a share of the agents in [0, 1], got ${JSON.stringify(raw)}`)
  return x
}

function wanCut(raw: string | undefined, sites: SiteShape | undefined): SimConfig['wanCut'] {
  if (raw === undefined) return undefined
  if (sites === undefined) throw new BenchUsageError('--wan-cut: needs --sites')
  const parts = raw.split(',').map((x) => Number(x.trim()))
  const [site, from, secs] = parts
  if (
    parts.length !== 3 ||
    !Number.isInteger(site) ||
    site! < 0 ||
    site! >= sites.sites ||
    !(from! >= 0) ||
    !(secs! > 0)
  ) {
    throw new BenchUsageError(
      `--wan-cut: want SITE,FROM_S,SECONDS with SITE below ${sites.sites}, got ${JSON.stringify(raw)}`,
    )
  }
  return { site: site!, fromMs: from! * 1000, toMs: (from! + secs!) * 1000 }
}

/** The image of the fleet's generator: a config blob and `layers` layers of payload plus tar overhead. */
export function imageBlobs(imageMib: number, layers: number): { blobBytes: number[]; manifestBytes: number } {
  const layerBytes = Math.floor((imageMib * MIB) / layers)
  return {
    blobBytes: [CONFIG_BLOB_BYTES, ...Array.from({ length: layers }, () => layerBytes + TAR_OVERHEAD_BYTES)],
    manifestBytes: manifestBytesFor(layers),
  }
}

function parse(argv: readonly string[]) {
  const text = { type: 'string' } as const
  return parseFlags(argv, {
    ...FLEET_SHAPE_OPTIONS,
    'chunk-mib': text,
    'rtt-ms': text,
    'wire-efficiency': text,
    'upload-slots': text,
    'seeder-upload-slots': text,
    'seeder-uploads-per-site': text,
    'wan-upload-slots': text,
    'seeder-once-per-site': text,
    'send-buffer-kib': text,
    'slot-wait-ms': text,
    'max-busy-backoff-ms': text,
    'inflight-per-peer': text,
    'inflight-total-ms': text,
    'node-inflight': text,
    'seed-copies': text,
    offers: text,
    'offer-ahead': text,
    'offer-full-ms': text,
    'max-peers': text,
    'stall-timeout-s': text,
    'lookup-latency-ms': text,
    'wan-cut': text,
    compare: text,
  } as const)
}
