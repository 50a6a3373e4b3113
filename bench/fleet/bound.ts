import type { LinkRates, ScenarioName } from './config.ts'

/** Bytes per second of a rate in tc's megabits (10^6 bit/s). */
export function mbitToBps(mbit: number): number {
  return (mbit * 1e6) / 8
}

/** What the fluid lower bound of one scenario is computed from. Rates in bytes per second. */
export interface BoundInput {
  readonly imageBytes: number
  readonly nodes: number
  /** Uplinks that hold the image when the rollout starts: every byte leaves one of them at least once. */
  readonly firstCopyBps: number
  /** Every non-node uplink allowed to serve the nodes during the rollout. */
  readonly sourceBps: number
  readonly nodeUpBps: number
  readonly nodeDownBps: number
}

export type BoundTerm = 'first-copy' | 'node-download' | 'aggregate-upload'

export interface LowerBound {
  readonly seconds: number
  readonly limitedBy: BoundTerm
  /** S / U_first */
  readonly firstCopyS: number
  /** S / D_n */
  readonly nodeDownloadS: number
  /** N·S / (U_src + N·U_n) */
  readonly aggregateUploadS: number
}

/**
 * The fluid lower bound `T* = max(S/U_first, S/D_n, N·S/(U_src + N·U_n))`: no system finishes sooner,
 * since the image must leave its first holders once, every node must receive all S bytes through its
 * downlink, and N·S bytes must be uploaded by the sources and the nodes together.
 */
export function lowerBound(input: BoundInput): LowerBound {
  const { imageBytes: s, nodes: n } = input
  for (const [k, v] of Object.entries(input)) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`lowerBound: ${k} must be positive, got ${v}`)
  }
  const firstCopyS = s / input.firstCopyBps
  const nodeDownloadS = s / input.nodeDownBps
  const aggregateUploadS = (n * s) / (input.sourceBps + n * input.nodeUpBps)
  const terms: readonly [BoundTerm, number][] = [
    ['first-copy', firstCopyS],
    ['node-download', nodeDownloadS],
    ['aggregate-upload', aggregateUploadS],
  ]
  let best = terms[0]!
  for (const t of terms) if (t[1] > best[1]) best = t
  return {
    seconds: best[1],
    limitedBy: best[0],
    firstCopyS,
    nodeDownloadS,
    aggregateUploadS,
  }
}

export interface BoundSources {
  readonly firstCopyMbit: number
  readonly sourceMbit: number
  /** In words, for the report. */
  readonly description: string
}

/**
 * Which uplinks each scenario's bound counts. The first copy always leaves the origin except when the
 * seeder was preheated; the aggregate term counts every non-node uplink that serves the nodes.
 */
export function boundSources(scenario: ScenarioName, links: LinkRates): BoundSources {
  switch (scenario) {
    case 'direct':
      return {
        firstCopyMbit: links.originUp,
        sourceMbit: links.originUp,
        description: 'U_first = U_o; U_src = U_o',
      }
    case 'cache':
      return {
        firstCopyMbit: links.originUp,
        sourceMbit: links.originUp + links.cacheUp,
        description: 'U_first = U_o (the cache starts empty); U_src = U_o + U_cache',
      }
    case 'shoal-cold':
    case 'shoal-sites':
      return {
        firstCopyMbit: links.originUp,
        sourceMbit: links.originUp + links.seederUp,
        description: 'U_first = U_o (nothing cached anywhere); U_src = U_o + U_s',
      }
    case 'shoal-seederless':
      return {
        firstCopyMbit: links.originUp,
        sourceMbit: links.originUp,
        description: 'U_first = U_o (no seeder, nothing cached); U_src = U_o (the seeder host runs nothing)',
      }
    case 'shoal-preheated':
      return {
        firstCopyMbit: links.seederUp,
        sourceMbit: links.seederUp,
        description: 'U_first = U_s (the seeder holds the image); U_src = U_s (the origin is not meant to serve)',
      }
  }
}

export function scenarioBound(scenario: ScenarioName, links: LinkRates, imageBytes: number, nodes: number) {
  const src = boundSources(scenario, links)
  const bound = lowerBound({
    imageBytes,
    nodes,
    firstCopyBps: mbitToBps(src.firstCopyMbit),
    sourceBps: mbitToBps(src.sourceMbit),
    nodeUpBps: mbitToBps(links.nodeUp),
    nodeDownBps: mbitToBps(links.nodeDown),
  })
  return { ...bound, sources: src }
}
