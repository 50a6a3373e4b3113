import { describe, expect, it } from 'vitest'
import { planFleet, planSiteFleet } from '../../../../bench/fleet/netns.ts'
import {
  agentArgs,
  CORE_SITE,
  parseSeederStatus,
  seederArgs,
  shoal,
  shoalCliGap,
  siteArgs,
} from '../../../../bench/fleet/scenarios/shoal.ts'

const [, , seeder, node] = planFleet(1, {
  originUp: 1,
  cacheUp: 1,
  cacheDown: 1,
  seederUp: 1,
  seederDown: 1,
  nodeUp: 1,
  nodeDown: 1,
})

describe('shoal CLI contract', () => {
  it('starts the seeder on its link-local address', () => {
    expect(seederArgs('/b/shoal.js', seeder!, 'http://169.254.1.1:5000', '169.254.1.1:5000', '/d')).toEqual([
      '/b/shoal.js',
      'seeder',
      '--origin',
      'http://169.254.1.1:5000',
      '--data',
      '/d',
      '--p2p-listen',
      '/ip4/169.254.1.3/tcp/4001',
      '--api-listen',
      '169.254.1.3:7000',
      '--insecure-registry',
      '169.254.1.1:5000',
      '--api-no-auth',
    ])
  })

  it('starts an agent on 127.0.0.1:5000 that joins through the seeder', () => {
    const addr = '/ip4/169.254.1.3/tcp/4001/p2p/12D3KooWX'
    const args = agentArgs('/b/shoal.js', node!, addr, 'http://169.254.1.1:5000', '169.254.1.1:5000', '/d')
    expect(args.slice(1, 4)).toEqual(['agent', '--listen', '127.0.0.1:5000'])
    expect(args.join(' ')).toContain(
      '--p2p-listen /ip4/169.254.2.1/tcp/4002 --seeder /ip4/169.254.1.3/tcp/4001/p2p/12D3KooWX',
    )
    expect(args.join(' ')).toContain('--insecure-registry 169.254.1.1:5000')
  })

  it('reads the seeder /status', () => {
    expect(parseSeederStatus('{"peerId":"12D3KooWX","multiaddrs":["/ip4/169.254.1.3/tcp/4001",7]}')).toEqual({
      peerId: '12D3KooWX',
      multiaddrs: ['/ip4/169.254.1.3/tcp/4001'],
    })
    expect(() => parseSeederStatus('{"multiaddrs":[]}')).toThrow(/peerId/)
    expect(() => parseSeederStatus('null')).toThrow(TypeError)
  })

  it('finds a missing command through --help without starting anything', async () => {
    const fake = new URL('../fake-shoal.ts', import.meta.url).pathname
    expect(await shoalCliGap(fake, 'preheated')).toBeUndefined()
    // no such file: node exits 1 for every command
    const missing = new URL('./no-such-shoal.js', import.meta.url).pathname
    expect(await shoalCliGap(missing, 'cold')).toMatch(/^`shoal agent` is not there yet \(exit 1/)
  })

  it('needs --site on agent and seeder for the site-aware run only', async () => {
    const fake = new URL('../fake-shoal.ts', import.meta.url).pathname
    expect(await shoalCliGap(fake, 'sites')).toBeUndefined()
    // this checkout's agent and seeder have --site (parsed; what it does comes with site-aware scheduling)
    const real = new URL('../../../../bin/shoal.js', import.meta.url).pathname
    expect(await shoalCliGap(real, 'sites')).toBeUndefined()
  })
})

describe('shoal-sites', () => {
  const links = { originUp: 1, cacheUp: 1, cacheDown: 1, seederUp: 1, seederDown: 1, nodeUp: 1, nodeDown: 1 }
  const { hosts } = planSiteFleet({ sites: 2, siteNodes: 2, wanMbit: 24 }, links)
  const bySite = hosts.filter((h) => h.role === 'node')
  const core = hosts.find((h) => h.role === 'seeder')!

  it("tells each agent its node's site and the seeder the core's", () => {
    expect(bySite.map((h) => siteArgs('sites', h).join(' '))).toEqual([
      '--site site-0',
      '--site site-0',
      '--site site-1',
      '--site site-1',
    ])
    expect(siteArgs('sites', core)).toEqual(['--site', CORE_SITE])
    expect(CORE_SITE).not.toMatch(/^site-\d+$/)
  })

  it('tells nobody a site in the flat runs, even on an edge-site fleet', () => {
    for (const mode of ['cold', 'preheated'] as const) {
      for (const h of [...bySite, core]) expect(siteArgs(mode, h)).toEqual([])
    }
  })

  it('refuses a node without a site', () => {
    expect(() => siteArgs('sites', node!)).toThrow(/no site/)
  })

  it('is named shoal-sites', () => {
    expect(shoal('sites').name).toBe('shoal-sites')
    expect(shoal('cold').name).toBe('shoal-cold')
  })
})
