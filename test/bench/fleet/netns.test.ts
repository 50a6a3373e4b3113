import { describe, expect, it } from 'vitest'
import type { LinkRates } from '../../../bench/fleet/config.ts'
import {
  benchNamespaces,
  fleetSetupCommands,
  HUB_NS,
  nodeAddress,
  NS_PREFIX,
  nsExec,
  planFleet,
  planRun,
  planSiteFleet,
  tbfArgs,
  tbfBurstBytes,
  wanLinkCommands,
} from '../../../bench/fleet/netns.ts'

const links: LinkRates = {
  originUp: 40,
  cacheUp: 200,
  cacheDown: 150,
  seederUp: 300,
  seederDown: 250,
  nodeUp: 100,
  nodeDown: 80,
}

/** Every IPv4 address in a command line. */
function ipv4s(args: readonly string[]): string[] {
  return args.flatMap((a) => a.match(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g) ?? [])
}

describe('nodeAddress', () => {
  it('stays inside 169.254.0.0/16 and off its reserved first and last /24', () => {
    expect(nodeAddress(1)).toBe('169.254.2.1')
    expect(nodeAddress(250)).toBe('169.254.2.250')
    expect(nodeAddress(251)).toBe('169.254.3.1')
    expect(nodeAddress(1000)).toBe('169.254.5.250')
  })

  it('rejects indexes from outside the plan', () => {
    expect(() => nodeAddress(0)).toThrow(RangeError)
    expect(() => nodeAddress(1.5)).toThrow(RangeError)
  })
})

describe('planFleet', () => {
  const hosts = planFleet(300, links)

  it('has origin, cache, seeder and the nodes, each with a unique link-local address', () => {
    expect(hosts.map((h) => h.name).slice(0, 4)).toEqual(['origin', 'cache', 'seeder', 'node-1'])
    expect(hosts).toHaveLength(303)
    expect(new Set(hosts.map((h) => h.addr)).size).toBe(303)
    for (const h of hosts) expect(h.addr).toMatch(/^169\.254\.(?:[1-9]|[1-9]\d|1\d\d|2[0-4]\d|25[0-4])\.\d+$/)
  })

  it('names every namespace with the sweepable prefix and keeps device names within 15 bytes', () => {
    for (const h of hosts) {
      expect(h.ns.startsWith(NS_PREFIX)).toBe(true)
      expect(Buffer.byteLength(h.hubDev)).toBeLessThanOrEqual(15)
    }
    expect(new Set(hosts.map((h) => h.hubDev)).size).toBe(hosts.length)
  })

  it('takes each host link rate from the config, and leaves the origin download unshaped', () => {
    const by = new Map(hosts.map((h) => [h.name, h]))
    expect(by.get('origin')).toMatchObject({ upMbit: 40, downMbit: undefined })
    expect(by.get('cache')).toMatchObject({ upMbit: 200, downMbit: 150 })
    expect(by.get('seeder')).toMatchObject({ upMbit: 300, downMbit: 250 })
    expect(by.get('node-7')).toMatchObject({ upMbit: 100, downMbit: 80 })
  })
})

describe('tbfArgs', () => {
  it('builds a tc token bucket on the device egress', () => {
    expect(tbfArgs('shoal-b-node-1', 'eth0', 100)).toEqual([
      '-n',
      'shoal-b-node-1',
      'qdisc',
      'replace',
      'dev',
      'eth0',
      'root',
      'tbf',
      'rate',
      '100000kbit',
      'burst',
      '131072',
      'latency',
      '50ms',
    ])
  })

  it('keeps fractional rates and never lets the burst drop under a 64 KiB GSO packet', () => {
    expect(tbfArgs('ns', 'eth0', 0.5)).toContain('500kbit')
    expect(tbfBurstBytes(1)).toBeGreaterThanOrEqual(64 * 1024)
    // 10 ms worth at 1 gbit
    expect(tbfBurstBytes(1000)).toBe(1_250_000)
  })

  it('refuses a rate tc cannot use', () => {
    expect(() => tbfArgs('ns', 'eth0', 0)).toThrow(RangeError)
    expect(() => tbfArgs('ns', 'eth0', Number.POSITIVE_INFINITY)).toThrow(RangeError)
  })
})

describe('fleetSetupCommands', () => {
  const hosts = planFleet(3, links)
  const cmds = fleetSetupCommands(hosts)

  it('creates the hub and its bridge before any host', () => {
    expect(cmds[0]).toEqual({ cmd: 'ip', args: ['netns', 'add', HUB_NS] })
    const bridge = cmds.findIndex((c) => c.args.includes('bridge'))
    const firstHost = cmds.findIndex((c) => c.args.join(' ') === 'netns add shoal-b-origin')
    expect(bridge).toBeGreaterThan(0)
    expect(firstHost).toBeGreaterThan(bridge)
  })

  it('assigns only 169.254.0.0/16 addresses and turns IPv6 off in every namespace', () => {
    for (const c of cmds) for (const a of ipv4s(c.args)) expect(a.startsWith('169.254.')).toBe(true)
    const noV6 = cmds.filter((c) => c.args.includes('net.ipv6.conf.all.disable_ipv6=1')).map((c) => c.args[2])
    expect(noV6).toEqual([HUB_NS, ...hosts.map((h) => h.ns)])
    const addrs = cmds.filter((c) => c.args.includes('addr'))
    expect(addrs.map((c) => c.args.find((a) => a.includes('/')))).toEqual(hosts.map((h) => `${h.addr}/16`))
  })

  it('brings lo up in every host (agents listen on 127.0.0.1 there)', () => {
    for (const h of hosts) {
      expect(cmds).toContainEqual({ cmd: 'ip', args: ['-n', h.ns, 'link', 'set', 'lo', 'up'] })
    }
  })

  it('shapes uploads on the host side and downloads on the hub side', () => {
    const tc = cmds.filter((c) => c.cmd === 'tc').map((c) => `${c.args[1]} ${c.args[5]} ${c.args[9]}`)
    expect(tc).toEqual([
      'shoal-b-origin eth0 40000kbit',
      'shoal-b-cache eth0 200000kbit',
      `${HUB_NS} b-cache 150000kbit`,
      'shoal-b-seeder eth0 300000kbit',
      `${HUB_NS} b-seeder 250000kbit`,
      'shoal-b-node-1 eth0 100000kbit',
      `${HUB_NS} b-node-1 80000kbit`,
      'shoal-b-node-2 eth0 100000kbit',
      `${HUB_NS} b-node-2 80000kbit`,
      'shoal-b-node-3 eth0 100000kbit',
      `${HUB_NS} b-node-3 80000kbit`,
    ])
  })
})

describe('benchNamespaces', () => {
  it("keeps only the harness's namespaces from `ip netns list`", () => {
    const list = 'shoal-b-node-2 (id: 4)\nother-ns (id: 1)\nshoal-b-br\n\nshoal-e2e (id: 2)\n'
    expect(benchNamespaces(list)).toEqual(['shoal-b-node-2', 'shoal-b-br'])
    expect(benchNamespaces('')).toEqual([])
  })
})

describe('nsExec', () => {
  it('runs a command inside a namespace', () => {
    expect(nsExec('shoal-b-node-1', 'skopeo', ['copy'])).toEqual({
      cmd: 'ip',
      args: ['netns', 'exec', 'shoal-b-node-1', 'skopeo', 'copy'],
    })
  })
})

describe('planSiteFleet', () => {
  const plan = planSiteFleet({ sites: 2, siteNodes: 3, wanMbit: 24 }, links)
  const { hosts, sites } = plan

  it('keeps origin, cache and seeder on the core bridge and puts M nodes on each site bridge, in order', () => {
    expect(hosts.map((h) => h.name)).toEqual([
      'origin',
      'cache',
      'seeder',
      ...[1, 2, 3, 4, 5, 6].map((i) => `node-${i}`),
    ])
    for (const h of hosts.slice(0, 3)) {
      expect(h.site).toBeUndefined()
      expect(h.bridge).toBeUndefined()
    }
    expect(hosts.slice(3).map((h) => `${h.site} ${h.bridge}`)).toEqual([
      'site-0 br-site-0',
      'site-0 br-site-0',
      'site-0 br-site-0',
      'site-1 br-site-1',
      'site-1 br-site-1',
      'site-1 br-site-1',
    ])
  })

  it('gives every host its own link-local address in one /16 (the bridges are joined at layer 2)', () => {
    expect(hosts.slice(3).map((h) => h.addr)).toEqual([1, 2, 3, 4, 5, 6].map(nodeAddress))
    expect(new Set(hosts.map((h) => h.addr)).size).toBe(hosts.length)
  })

  it('plans one WAN link per site, device names within 15 bytes and unique', () => {
    expect(sites).toEqual([
      { name: 'site-0', bridge: 'br-site-0', coreDev: 'wc-site-0', siteDev: 'ws-site-0', wanMbit: 24 },
      { name: 'site-1', bridge: 'br-site-1', coreDev: 'wc-site-1', siteDev: 'ws-site-1', wanMbit: 24 },
    ])
    const many = planSiteFleet({ sites: 200, siteNodes: 1, wanMbit: 1 }, links).sites
    const devs = many.flatMap((s) => [s.bridge, s.coreDev, s.siteDev])
    for (const d of devs) expect(Buffer.byteLength(d)).toBeLessThanOrEqual(15)
    expect(new Set(devs).size).toBe(devs.length)
  })

  it('is what planRun builds with --sites, and the flat fleet without', () => {
    expect(planRun({ nodes: 6, sites: { sites: 2, siteNodes: 3, wanMbit: 24 }, links })).toEqual(plan)
    expect(planRun({ nodes: 3, sites: undefined, links })).toEqual({ hosts: planFleet(3, links), sites: [] })
  })
})

describe('fleetSetupCommands with sites', () => {
  const { hosts, sites } = planSiteFleet({ sites: 2, siteNodes: 2, wanMbit: 24 }, links)
  const cmds = fleetSetupCommands(hosts, sites)
  const line = (c: { cmd: string; args: readonly string[] }) => `${c.cmd} ${c.args.join(' ')}`
  const lines = cmds.map(line)

  it('makes each site bridge and joins it to the core bridge with a veth pair, before any host', () => {
    for (const s of sites) {
      const bridge = lines.indexOf(`ip -n ${HUB_NS} link add ${s.bridge} type bridge forward_delay 0 stp_state 0`)
      const veth = lines.indexOf(`ip -n ${HUB_NS} link add ${s.coreDev} type veth peer name ${s.siteDev}`)
      expect(bridge).toBeGreaterThan(0)
      expect(veth).toBeGreaterThan(bridge)
      expect(lines).toContain(`ip -n ${HUB_NS} link set ${s.coreDev} master br0`)
      expect(lines).toContain(`ip -n ${HUB_NS} link set ${s.siteDev} master ${s.bridge}`)
      expect(lines).toContain(`ip -n ${HUB_NS} link set ${s.coreDev} up`)
      expect(lines).toContain(`ip -n ${HUB_NS} link set ${s.siteDev} up`)
      expect(veth).toBeLessThan(lines.indexOf('ip netns add shoal-b-origin'))
    }
  })

  it('plugs each host into its own bridge', () => {
    const masters = cmds
      .filter((c) => c.args.includes('master') && c.args[4]?.startsWith('b-'))
      .map((c) => `${c.args[4]} ${c.args[6]}`)
    expect(masters).toEqual([
      'b-origin br0',
      'b-cache br0',
      'b-seeder br0',
      'b-node-1 br-site-0',
      'b-node-2 br-site-0',
      'b-node-3 br-site-1',
      'b-node-4 br-site-1',
    ])
  })

  it('shapes each WAN link both ways at the WAN rate, the nodes as in a flat fleet', () => {
    const tc = cmds.filter((c) => c.cmd === 'tc').map((c) => `${c.args[1]} ${c.args[5]} ${c.args[9]}`)
    expect(tc.slice(0, 4)).toEqual([
      `${HUB_NS} wc-site-0 24000kbit`,
      `${HUB_NS} ws-site-0 24000kbit`,
      `${HUB_NS} wc-site-1 24000kbit`,
      `${HUB_NS} ws-site-1 24000kbit`,
    ])
    expect(tc).toContain('shoal-b-node-4 eth0 100000kbit')
    expect(tc).toContain(`${HUB_NS} b-node-4 80000kbit`)
  })

  it('cuts a WAN link at both ends and brings both back', () => {
    const s = sites[1]!
    expect(wanLinkCommands(s, 'down').map(line)).toEqual([
      `ip -n ${HUB_NS} link set wc-site-1 down`,
      `ip -n ${HUB_NS} link set ws-site-1 down`,
    ])
    expect(wanLinkCommands(s, 'up').map(line)).toEqual([
      `ip -n ${HUB_NS} link set wc-site-1 up`,
      `ip -n ${HUB_NS} link set ws-site-1 up`,
    ])
  })
})
