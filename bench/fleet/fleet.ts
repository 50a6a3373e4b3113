import { spawnSync } from 'node:child_process'
import { type LinkCounters, parseHubStats, ZERO_COUNTERS } from './counters.ts'
import {
  benchNamespaces,
  type Command,
  type FleetPlan,
  fleetSetupCommands,
  type HostPlan,
  HUB_NS,
  nsExec,
  type SitePlan,
  wanLinkCommands,
} from './netns.ts'
import { runOk } from './proc.ts'

/** The key of a site's WAN link among a fleet's counters (beside the host names): `wan:site-0`. */
export function wanCounterKey(site: string): string {
  return `wan:${site}`
}

/** The namespaces, veths and qdiscs of one run; `sweepNamespaces` takes it all down again. */
export class Fleet {
  readonly hosts: readonly HostPlan[]
  readonly sites: readonly SitePlan[]
  readonly origin: HostPlan
  readonly cache: HostPlan
  readonly seeder: HostPlan
  readonly nodes: readonly HostPlan[]

  private constructor(plan: FleetPlan) {
    const { hosts } = plan
    this.hosts = hosts
    this.sites = plan.sites
    const one = (role: HostPlan['role']) => {
      const h = hosts.find((x) => x.role === role)
      if (h === undefined) throw new RangeError(`fleet plan has no ${role}`)
      return h
    }
    this.origin = one('origin')
    this.cache = one('cache')
    this.seeder = one('seeder')
    this.nodes = hosts.filter((h) => h.role === 'node')
  }

  /** Builds the fleet; the caller's sweep removes a half-built one. */
  static async create(plan: FleetPlan, opts: { signal?: AbortSignal } = {}): Promise<Fleet> {
    for (const c of fleetSetupCommands(plan.hosts, plan.sites)) {
      opts.signal?.throwIfAborted()
      await runOk(c, { timeoutMs: 10_000 })
    }
    return new Fleet(plan)
  }

  site(name: string): SitePlan {
    const s = this.sites.find((x) => x.name === name)
    if (s === undefined) throw new RangeError(`no site ${name} in this fleet`)
    return s
  }

  /** Takes `site`'s WAN link down or brings it back up. */
  async setWan(site: SitePlan, state: 'down' | 'up', opts: { signal?: AbortSignal } = {}): Promise<void> {
    for (const c of wanLinkCommands(site, state)) {
      await runOk(c, { timeoutMs: 5_000, ...(opts.signal === undefined ? {} : { signal: opts.signal }) })
    }
  }

  /** `cmd args` inside the host's namespace. */
  exec(host: HostPlan, cmd: string, args: readonly string[]): Command {
    return nsExec(host.ns, cmd, args)
  }

  /**
   * Every host's link counters, read in one go from the hub side of the veths, and each site's WAN link under
   * `wanCounterKey(site)`, seen from the site (tx = what left the site over its WAN, rx = what came in).
   */
  async counters(opts: { signal?: AbortSignal } = {}): Promise<ReadonlyMap<string, LinkCounters>> {
    const { stdout } = await runOk(
      { cmd: 'ip', args: ['-n', HUB_NS, '-s', '-j', 'link', 'show'] },
      {
        timeoutMs: 5_000,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      },
    )
    const byDev = parseHubStats(stdout)
    return new Map([
      ...this.hosts.map((h): [string, LinkCounters] => [h.name, byDev.get(h.hubDev) ?? ZERO_COUNTERS]),
      // The core end's rx is what the site sent; parseHubStats already reads it as the far side's tx.
      ...this.sites.map((s): [string, LinkCounters] => [wanCounterKey(s.name), byDev.get(s.coreDev) ?? ZERO_COUNTERS]),
    ])
  }
}

function sync(cmd: string, args: readonly string[]): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 })
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }
}

function pidsIn(ns: string): number[] {
  return sync('ip', ['netns', 'pids', ns])
    .stdout.split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0)
}

/**
 * Kills every process inside the harness's namespaces (by pid: all of them were started by a run of this
 * harness) and deletes the namespaces, which takes their veths and qdiscs with them. Synchronous, so it
 * also works from an exit handler. Returns the namespaces it removed.
 */
export function sweepNamespaces(): readonly string[] {
  const names = benchNamespaces(sync('ip', ['netns', 'list']).stdout)
  for (const ns of names) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const pids = pidsIn(ns)
      if (pids.length === 0) break
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      // A killed process leaves the namespace only once the kernel has reaped it.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
    }
    sync('ip', ['netns', 'del', ns])
  }
  return names
}
