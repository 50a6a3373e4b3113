import { DEFAULT_CHUNK_SIZE_BYTES } from '../../../shared/chunks/index.ts'
import { DEFAULT_AGENT_UPLOAD_SLOTS } from '../../../shared/swarm/protocol/index.ts'
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_SCENARIOS,
  DEFAULT_SITE_SCENARIOS,
  DEFAULTS,
  directEstimateS,
  parseBenchArgs,
  parseScenarios,
  type BenchConfig,
} from '../../../bench/fleet/config.ts'
import { BenchUsageError } from '../../../bench/fleet/errors.ts'

function config(argv: string[]): BenchConfig {
  const c = parseBenchArgs(argv)
  if (c === 'help') throw new Error('unexpected help')
  return c
}

describe('parseBenchArgs', () => {
  it('gives the full run by default: 8 nodes, 256 MiB in 4 layers, every scenario', () => {
    const c = config([])
    expect(c.mode).toBe('full')
    expect(c.nodes).toBe(8)
    expect(c.image.layers).toBe(4)
    expect(c.image.layers * c.image.layerBytes).toBe(256 * 1024 * 1024)
    expect(c.links).toEqual(DEFAULTS.full.links)
    // A thin origin: the fleet's downlinks together carry N times what the origin can send.
    expect(c.links.originUp).toBe(c.links.nodeDown)
    expect(directEstimateS(c.nodes, 256 * 1024 * 1024, c.links)).toBeCloseTo((8 * 256 * 1024 * 1024 * 8) / 100e6)
    expect(c.scenarios).toEqual(DEFAULT_SCENARIOS)
    expect(c.shoalBin).toMatch(/\/bin\/shoal\.js$/)
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('gives a small fleet with --quick', () => {
    const c = config(['--quick'])
    expect(c.mode).toBe('quick')
    expect(c.nodes).toBe(4)
    expect(c.image.layers * c.image.layerBytes).toBe(32 * 1024 * 1024)
  })

  it('lets every link and size be set', () => {
    const c = config(
      ['--quick', '--nodes', '8', '--image-mib', '10', '--layers', '2', '--origin-up', '12.5', '--node-down', '300']
        .concat([
          '--node-up',
          '20',
          '--seeder-up',
          '400',
          '--seeder-down',
          '401',
          '--cache-up',
          '99',
          '--cache-down',
          '98',
        ])
        .concat(['--scenarios', 'cache,direct', '--seed', 'x', '--sample-ms', '250', '--pull-timeout', '30']),
    )
    expect(c.nodes).toBe(8)
    expect(c.image).toMatchObject({ layers: 2, layerBytes: 5 * 1024 * 1024, seed: 'x' })
    expect(c.links).toEqual({
      originUp: 12.5,
      cacheUp: 99,
      cacheDown: 98,
      seederUp: 400,
      seederDown: 401,
      nodeUp: 20,
      nodeDown: 300,
    })
    expect(c.scenarios).toEqual(['direct', 'cache'])
    expect(c.sampleMs).toBe(250)
    expect(c.pullTimeoutS).toBe(30)
  })

  it('derives the pull timeout from the direct rollout estimate', () => {
    const c = config(['--quick'])
    const estimate = directEstimateS(4, 32 * 1024 * 1024, c.links)
    expect(estimate).toBeCloseTo((4 * 32 * 1024 * 1024 * 8) / 80e6)
    expect(c.pullTimeoutS).toBe(Math.ceil(3 * estimate + 60))
  })

  it('passes extra agent flags through, none by default', () => {
    expect(config([]).agentFlags).toEqual([])
    const c = config(['--agent-flag=--stall-timeout=60000', '--agent-flag=--chunk-size=1048576'])
    expect(c.agentFlags).toEqual(['--stall-timeout=60000', '--chunk-size=1048576'])
  })

  it('passes extra seeder flags through, none by default', () => {
    expect(config([]).seederFlags).toEqual([])
    expect(config(['--seeder-flag=--chunk-size=1MiB']).seederFlags).toEqual(['--chunk-size=1MiB'])
  })

  it('records the swarm chunk size of the run: the seeder flag, else the default', () => {
    expect(config([]).swarmChunkBytes).toBe(DEFAULT_CHUNK_SIZE_BYTES)
    expect(config(['--seeder-flag=--chunk-size=4MiB']).swarmChunkBytes).toBe(4 * 1024 * 1024)
    expect(() => config(['--seeder-flag=--chunk-size=lots'])).toThrow(/not a size/)
  })

  it("records the agents' upload slots of the run: the agent flag, else the default", () => {
    expect(config([]).agentUploadSlots).toBe(DEFAULT_AGENT_UPLOAD_SLOTS)
    expect(config(['--agent-flag=--upload-slots=6']).agentUploadSlots).toBe(6)
    expect(() => config(['--agent-flag=--upload-slots=0'])).toThrow(/not a positive integer/)
  })

  it('answers help', () => {
    expect(parseBenchArgs(['--help'])).toBe('help')
  })

  it.each([
    [['--nodes', '0']],
    [['--nodes', '2.5']],
    [['--nodes', '100000']],
    [['--origin-up', '-1']],
    [['--node-down', 'fast']],
    [['--bogus']],
    [['extra']],
    [['--scenarios', 'direct,torrent']],
    [['--scenarios', ',']],
  ])('refuses %j with a usage error', (argv) => {
    expect(() => parseBenchArgs(argv)).toThrow(BenchUsageError)
  })
})

describe('parseScenarios', () => {
  it('keeps the report order whatever order the flag used', () => {
    expect(parseScenarios('shoal-preheated, direct')).toEqual(['direct', 'shoal-preheated'])
    expect(parseScenarios(undefined)).toEqual(DEFAULT_SCENARIOS)
  })
})

describe('edge-site runs', () => {
  const sites = ['--sites', '2', '--site-nodes', '3', '--wan', '24', '--image-mib', '32']

  it('sizes the fleet K × M and runs flat and site-aware Shoal beside the baselines by default', () => {
    const c = config(sites)
    expect(c.nodes).toBe(6)
    expect(c.sites).toEqual({ sites: 2, siteNodes: 3, wanMbit: 24 })
    expect(c.scenarios).toEqual(DEFAULT_SITE_SCENARIOS)
    expect(c.scenarios).toContain('shoal-sites')
    expect(c.wanCut).toBeUndefined()
  })

  it('allows for M copies crossing each WAN link in the pull timeout', () => {
    const S = 32 * 1024 * 1024
    const wan = (3 * S) / 3e6
    const c = config([...sites, '--origin-up', '1000', '--node-down', '1000'])
    expect(directEstimateS(6, S, c.links, c.sites)).toBeCloseTo(wan)
    expect(c.pullTimeoutS).toBe(
      Math.ceil(3 * directEstimateS(6, c.image.layers * c.image.layerBytes, c.links, c.sites) + 60),
    )
    // A WAN cut adds its length.
    const cut = config([...sites, '--origin-up', '1000', '--node-down', '1000', '--wan-cut', 'site-1:5:20'])
    expect(cut.wanCut).toEqual({ site: 'site-1', atS: 5, forS: 20 })
    expect(cut.pullTimeoutS).toBeGreaterThan(c.pullTimeoutS + 3 * 20 - 1)
  })

  it.each([
    [['--scenarios', 'shoal-sites']],
    [['--wan-cut', 'site-0:5:20']],
    [[...sites, '--wan-cut', 'site-2:5:20']],
    [[...sites, '--wan-cut', 'site-0:5']],
    [[...sites, '--wan-cut', 'site-0:-1:20']],
    [[...sites, '--wan-cut', 'site-0:5:0']],
    [[...sites, '--nodes', '6']],
  ])('refuses %j with a usage error', (argv) => {
    expect(() => parseBenchArgs(argv)).toThrow(BenchUsageError)
  })
})
