import type { LinkRates } from './config.ts'
import { type SiteShape, siteOfNode } from './sites.ts'

/** Every namespace the harness makes starts with this, so a sweep can find leftovers of a crashed run. */
export const NS_PREFIX = 'shoal-b-'
export const HUB_NS = `${NS_PREFIX}br`
export const BRIDGE = 'br0'
/** The host side of every veth pair; the hub side is named after the host (`b-node-3`). */
export const HOST_DEV = 'eth0'

export type HostRole = 'origin' | 'cache' | 'seeder' | 'node'

export interface HostPlan {
  readonly role: HostRole
  /** `origin`, `cache`, `seeder`, `node-1` … */
  readonly name: string
  readonly ns: string
  /** A 169.254.0.0/16 (link-local) address: the fleet never uses any other. */
  readonly addr: string
  /** The veth end in the hub namespace, on the bridge. */
  readonly hubDev: string
  /** Shaped on the host side's egress; undefined = unshaped. */
  readonly upMbit: number | undefined
  /** Shaped on the hub side's egress (what the bridge sends the host); undefined = unshaped. */
  readonly downMbit: number | undefined
  /** The bridge in the hub namespace this host is plugged into: its site's; absent = the core's (`br0`). */
  readonly bridge?: string
  /** The edge site a node is in (`site-0` …); absent for the core's hosts and in a flat fleet. */
  readonly site?: string
}

/**
 * One edge site: its own bridge in the hub namespace, joined to the core's bridge by a veth pair, the WAN
 * link, shaped at `wanMbit` on both ends' egress. The core end's counters, read as a host's (see
 * `parseHubStats`), are the site's view: what it sent out over the WAN and what it received.
 */
export interface SitePlan {
  /** `site-0` …, as `siteOfNode` names it: the agents' `--site`. */
  readonly name: string
  readonly bridge: string
  /** The WAN veth end on the core's bridge: its egress is the site's WAN downlink. */
  readonly coreDev: string
  /** The WAN veth end on the site's bridge: its egress is the site's WAN uplink. */
  readonly siteDev: string
  readonly wanMbit: number
}

/** The fleet's layout: its hosts and, for an edge-site fleet, its sites. */
export interface FleetPlan {
  readonly hosts: readonly HostPlan[]
  /** Empty for a flat fleet. */
  readonly sites: readonly SitePlan[]
}

/** One command line of the topology, run in order. */
export interface Command {
  readonly cmd: string
  readonly args: readonly string[]
}

const NODES_PER_SUBNET = 250

/** Node i (from 1) lives at 169.254.(2 + ⌊(i−1)/250⌋).((i−1) mod 250 + 1): clear of the reserved .0.x and .255.x. */
export function nodeAddress(i: number): string {
  if (!Number.isInteger(i) || i < 1 || i > NODES_PER_SUBNET * 250) throw new RangeError(`node index ${i}`)
  const k = i - 1
  return `169.254.${2 + Math.floor(k / NODES_PER_SUBNET)}.${(k % NODES_PER_SUBNET) + 1}`
}

function host(
  role: HostRole,
  name: string,
  addr: string,
  up: number | undefined,
  down: number | undefined,
  site?: SitePlan,
): HostPlan {
  return {
    role,
    name,
    ns: `${NS_PREFIX}${name}`,
    addr,
    hubDev: `b-${name}`,
    upMbit: up,
    downMbit: down,
    ...(site === undefined ? {} : { bridge: site.bridge, site: site.name }),
  }
}

function coreHosts(links: LinkRates): HostPlan[] {
  return [
    // The origin's downlink only carries the image push before any measurement.
    host('origin', 'origin', '169.254.1.1', links.originUp, undefined),
    host('cache', 'cache', '169.254.1.2', links.cacheUp, links.cacheDown),
    host('seeder', 'seeder', '169.254.1.3', links.seederUp, links.seederDown),
  ]
}

/** The fleet: origin, cache and seeder hosts, then `nodes` nodes, all on one bridge. */
export function planFleet(nodes: number, links: LinkRates): readonly HostPlan[] {
  const hosts = coreHosts(links)
  for (let i = 1; i <= nodes; i++) hosts.push(host('node', `node-${i}`, nodeAddress(i), links.nodeUp, links.nodeDown))
  return hosts
}

/** Site k's devices: `br-site-k` (its bridge), `wc-site-k` / `ws-site-k` (the WAN link's core and site ends). */
export function planSite(name: string, wanMbit: number): SitePlan {
  return { name, bridge: `br-${name}`, coreDev: `wc-${name}`, siteDev: `ws-${name}`, wanMbit }
}

/**
 * An edge-site fleet: origin, cache and seeder on the core's bridge; K sites of M nodes each (nodes numbered
 * on from 1 across sites, `node-1` … `node-M` in `site-0`), each site on its own bridge behind its WAN link.
 * Every address stays in one 169.254.0.0/16 network: the bridges are joined at layer 2, so no host routes.
 */
export function planSiteFleet(shape: SiteShape, links: LinkRates): FleetPlan {
  const sites: SitePlan[] = []
  for (let k = 0; k < shape.sites; k++) sites.push(planSite(`site-${k}`, shape.wanMbit))
  const hosts = coreHosts(links)
  for (let i = 1; i <= shape.sites * shape.siteNodes; i++) {
    const site = sites.find((s) => s.name === siteOfNode(shape, i - 1))
    hosts.push(host('node', `node-${i}`, nodeAddress(i), links.nodeUp, links.nodeDown, site))
  }
  return { hosts, sites }
}

/** The plan of a run: an edge-site fleet with `--sites`, else a flat one. */
export function planRun(config: { nodes: number; sites: SiteShape | undefined; links: LinkRates }): FleetPlan {
  if (config.sites !== undefined) return planSiteFleet(config.sites, config.links)
  return { hosts: planFleet(config.nodes, config.links), sites: [] }
}

/** 1 MB/s of burst per 80 mbit, and never below 128 KiB so a 64 KiB GSO packet always passes whole. */
export function tbfBurstBytes(mbit: number): number {
  const bytesPerSecond = (mbit * 1e6) / 8
  return Math.max(128 * 1024, Math.ceil(bytesPerSecond * 0.01))
}

/** tc's argv that shapes `dev`'s egress in `ns` to `mbit` with a token bucket. */
export function tbfArgs(ns: string, dev: string, mbit: number): readonly string[] {
  if (!(Number.isFinite(mbit) && mbit > 0)) throw new RangeError(`rate ${mbit} mbit`)
  // kbit keeps fractional mbit rates exact enough; tc would round "0.5mbit" itself anyway.
  const kbit = Math.max(1, Math.round(mbit * 1000))
  return ['-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'tbf'].concat([
    'rate',
    `${kbit}kbit`,
    'burst',
    String(tbfBurstBytes(mbit)),
    'latency',
    '50ms',
  ])
}

function inNs(ns: string, ...args: string[]): Command {
  return { cmd: 'ip', args: ['-n', ns, ...args] }
}

/** IPv6 off, so no fe80:: address (or any address but the planned 169.254 one) ever appears. */
function noIpv6(ns: string): Command {
  return {
    cmd: 'ip',
    args: ['netns', 'exec', ns, 'sysctl', '-q', '-w'].concat([
      'net.ipv6.conf.all.disable_ipv6=1',
      'net.ipv6.conf.default.disable_ipv6=1',
    ]),
  }
}

function bridgeCommands(name: string): Command[] {
  return [
    inNs(HUB_NS, 'link', 'add', name, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0'),
    inNs(HUB_NS, 'link', 'set', name, 'up'),
  ]
}

/**
 * Every command that builds the fleet, in order: the hub and the core's bridge first, then each site's
 * bridge and WAN link, then each host.
 */
export function fleetSetupCommands(hosts: readonly HostPlan[], sites: readonly SitePlan[] = []): readonly Command[] {
  const out: Command[] = [
    { cmd: 'ip', args: ['netns', 'add', HUB_NS] },
    noIpv6(HUB_NS),
    inNs(HUB_NS, 'link', 'set', 'lo', 'up'),
    ...bridgeCommands(BRIDGE),
  ]
  for (const s of sites) {
    out.push(
      ...bridgeCommands(s.bridge),
      inNs(HUB_NS, 'link', 'add', s.coreDev, 'type', 'veth', 'peer', 'name', s.siteDev),
      inNs(HUB_NS, 'link', 'set', s.coreDev, 'master', BRIDGE),
      inNs(HUB_NS, 'link', 'set', s.siteDev, 'master', s.bridge),
      inNs(HUB_NS, 'link', 'set', s.coreDev, 'up'),
      inNs(HUB_NS, 'link', 'set', s.siteDev, 'up'),
      // Both directions at the WAN rate: into the site on the core end's egress, out of it on the site end's.
      { cmd: 'tc', args: tbfArgs(HUB_NS, s.coreDev, s.wanMbit) },
      { cmd: 'tc', args: tbfArgs(HUB_NS, s.siteDev, s.wanMbit) },
    )
  }
  for (const h of hosts) {
    out.push(
      { cmd: 'ip', args: ['netns', 'add', h.ns] },
      noIpv6(h.ns),
      // lo: agents listen on 127.0.0.1 inside a node's namespace.
      inNs(h.ns, 'link', 'set', 'lo', 'up'),
      inNs(HUB_NS, 'link', 'add', h.hubDev, 'type', 'veth', 'peer', 'name', HOST_DEV, 'netns', h.ns),
      inNs(HUB_NS, 'link', 'set', h.hubDev, 'master', h.bridge ?? BRIDGE),
      inNs(HUB_NS, 'link', 'set', h.hubDev, 'up'),
      inNs(h.ns, 'addr', 'add', `${h.addr}/16`, 'dev', HOST_DEV),
      inNs(h.ns, 'link', 'set', HOST_DEV, 'up'),
    )
    if (h.upMbit !== undefined) out.push({ cmd: 'tc', args: tbfArgs(h.ns, HOST_DEV, h.upMbit) })
    if (h.downMbit !== undefined) out.push({ cmd: 'tc', args: tbfArgs(HUB_NS, h.hubDev, h.downMbit) })
  }
  return out
}

/**
 * Takes a site's WAN link down (both ends: nothing crosses either way, as when the line is cut) or brings it
 * back. The kernel keeps the TCP connections across it; they resume by retransmission when it returns.
 */
export function wanLinkCommands(site: SitePlan, state: 'down' | 'up'): readonly Command[] {
  return [inNs(HUB_NS, 'link', 'set', site.coreDev, state), inNs(HUB_NS, 'link', 'set', site.siteDev, state)]
}

/** Names from `ip netns list` ("name" or "name (id: 3)" per line) that the harness owns. */
export function benchNamespaces(ipNetnsList: string): readonly string[] {
  return ipNetnsList
    .split('\n')
    .map((line) => line.trim().split(/\s+/, 1)[0] ?? '')
    .filter((name) => name.startsWith(NS_PREFIX))
}

/** `ip` prefixed so a command runs inside the host's namespace (ip execs it: the pid is the command's). */
export function nsExec(ns: string, cmd: string, args: readonly string[]): Command {
  return { cmd: 'ip', args: ['netns', 'exec', ns, cmd, ...args] }
}
