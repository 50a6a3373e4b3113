import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateSwarmKey, writeNewIdentity } from '../../../shared/p2p/index.ts'
import type { HostPlan } from '../netns.ts'
import type { Daemon } from '../../../harness/daemon.ts'
import { withPeerId } from '../../../shared/swarm/index.ts'
import { run } from '../proc.ts'
import { type Scenario, type ScenarioContext, skopeoPull } from '../scenario.ts'

export const SEEDER_P2P_PORT = 4001
export const AGENT_P2P_PORT = 4002
export const SEEDER_API_PORT = 7000
/** Inside every node's namespace the client talks to its own agent here, as it would on a real host. */
export const AGENT_LISTEN = '127.0.0.1:5000'

// Generous: on a loaded machine six agents and a seeder starting at once have taken over a minute to listen.
const READY_WAIT_MS = 180_000

/**
 * The seeder's `--site` in `shoal-sites`. It sits in the core, behind every site's WAN link, so it is named
 * as a site of its own: to every agent it is then a peer of another site, whose bytes count as WAN (the
 * issue: "a seeder in another site is WAN") and which super-seeds each site separately. Without a site it
 * would be a site-less peer, whose place in a site-aware swarm is whatever the swarm makes of "no site".
 */
export const CORE_SITE = 'core'

export type ShoalMode = 'cold' | 'preheated' | 'sites'

/** The seeder's `GET /status`. */
export interface SeederStatus {
  readonly peerId: string
  readonly multiaddrs: readonly string[]
}

export function parseSeederStatus(body: string): SeederStatus {
  const doc: unknown = JSON.parse(body)
  if (typeof doc !== 'object' || doc === null) throw new TypeError('seeder /status: not an object')
  const { peerId, multiaddrs } = doc as Record<string, unknown>
  if (typeof peerId !== 'string' || peerId === '') throw new TypeError('seeder /status: no peerId')
  const addrs = Array.isArray(multiaddrs) ? multiaddrs.filter((a): a is string => typeof a === 'string') : []
  return { peerId, multiaddrs: addrs }
}

/** The shoal process environment: without the caller's SHOAL_* variables, which would override the flags' file. */
function shoalEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_')))
}

export function seederArgs(
  bin: string,
  seeder: HostPlan,
  originUrl: string,
  originHost: string,
  data: string,
): string[] {
  return (
    [bin, 'seeder', '--origin', originUrl, '--data', data]
      .concat(['--p2p-listen', `/ip4/${seeder.addr}/tcp/${SEEDER_P2P_PORT}`])
      .concat(['--api-listen', `${seeder.addr}:${SEEDER_API_PORT}`, '--insecure-registry', originHost])
      // The API listens inside the fleet's private network namespace; the bench's own `shoal preheat` has no token.
      .concat(['--api-no-auth'])
  )
}

export function agentArgs(
  bin: string,
  node: HostPlan,
  seederAddr: string,
  originUrl: string,
  originHost: string,
  data: string,
): string[] {
  return [bin, 'agent', '--listen', AGENT_LISTEN, '--origin', originUrl, '--data', data]
    .concat(['--p2p-listen', `/ip4/${node.addr}/tcp/${AGENT_P2P_PORT}`, '--seeder', seederAddr])
    .concat(['--insecure-registry', originHost])
}

/**
 * Whether this checkout's `shoal` command has what the scenario drives: a `seeder` command, an agent that
 * joins a swarm and, for a preheated run, a `preheat` command. Asks each command's --help: nothing starts.
 */
export async function shoalCliGap(bin: string, mode: ShoalMode): Promise<string | undefined> {
  const site = mode === 'sites' ? ['--site'] : []
  const needs: [string, readonly string[]][] = [
    ['agent', ['--p2p-listen', '--seeder', ...site]],
    ['seeder', ['--origin', '--p2p-listen', '--api-listen', ...site]],
  ]
  if (mode === 'preheated') needs.push(['preheat', ['--seeder']])
  for (const [command, flags] of needs) {
    const r = await run({ cmd: process.execPath, args: [bin, command, '--help'] }, { timeoutMs: 30_000 })
    if (r.code !== 0) return `\`shoal ${command}\` is not there yet (exit ${r.code}: ${firstLine(r.stderr)})`
    const missing = flags.filter((f) => !r.stdout.includes(f))
    if (missing.length > 0) return `\`shoal ${command}\` has no ${missing.join(', ')} flag yet`
  }
  return undefined
}

function firstLine(text: string): string {
  return text.trim().split('\n', 1)[0] ?? ''
}

/** `--site NAME` for a host in `shoal-sites` (a node's own site, the seeder's CORE_SITE); none otherwise. */
export function siteArgs(mode: ShoalMode, host: HostPlan): string[] {
  if (mode !== 'sites') return []
  if (host.role === 'seeder') return ['--site', CORE_SITE]
  if (host.site === undefined) throw new RangeError(`shoal-sites: ${host.name} is in no site (run with --sites)`)
  return ['--site', host.site]
}

const NAMES = { cold: 'shoal-cold', preheated: 'shoal-preheated', sites: 'shoal-sites' } as const
const TITLES = { cold: 'shoal, cold', preheated: 'shoal, preheated seeder', sites: 'shoal, site-aware' } as const

/**
 * Seeder and one agent per node; `preheat` pulls the image into the seeder before the rollout starts;
 * `sites` is `cold` with each agent told its site and the seeder its own (CORE_SITE).
 */
export function shoal(mode: ShoalMode): Scenario {
  let daemons: Daemon[] = []
  return {
    name: NAMES[mode],
    title: TITLES[mode],
    unavailable: (ctx) => shoalCliGap(ctx.config.shoalBin, mode),
    async setup(ctx: ScenarioContext) {
      const { fleet } = ctx
      const seederData = join(ctx.dir, 'seeder')
      await mkdir(seederData, { recursive: true })
      daemons.push(
        ctx.daemon(
          fleet.seeder,
          'seeder',
          process.execPath,
          seederArgs(ctx.config.shoalBin, fleet.seeder, ctx.originUrl, ctx.originHost, seederData).concat(
            siteArgs(mode, fleet.seeder),
            ctx.config.seederFlags,
          ),
          shoalEnv(),
        ),
      )
      const api = `http://${fleet.seeder.addr}:${SEEDER_API_PORT}`
      const status = parseSeederStatus(await ctx.probe(fleet.seeder, `${api}/status`, READY_WAIT_MS))
      const seederAddr = withPeerId(`/ip4/${fleet.seeder.addr}/tcp/${SEEDER_P2P_PORT}`, status.peerId)
      ctx.log(`seeder ${status.peerId} up`)
      for (const node of fleet.nodes) {
        const data = join(ctx.dir, node.name)
        await mkdir(data, { recursive: true })
        const args = agentArgs(ctx.config.shoalBin, node, seederAddr, ctx.originUrl, ctx.originHost, data).concat(
          siteArgs(mode, node),
          ctx.config.agentFlags,
        )
        daemons.push(ctx.daemon(node, `agent-${node.name}`, process.execPath, args, shoalEnv()))
      }
      await Promise.all(fleet.nodes.map((n) => ctx.probe(n, `http://${AGENT_LISTEN}/v2/`, READY_WAIT_MS)))
      ctx.log(`${fleet.nodes.length} agents up`)
      if (mode === 'preheated') {
        const ref = ctx.image.originRef
        const t0 = performance.now()
        const r = await ctx.run(
          fleet.seeder,
          process.execPath,
          [ctx.config.shoalBin, 'preheat', '--seeder', api, ref],
          30 * 60_000,
        )
        if (r.code !== 0) throw new Error(`shoal preheat failed (exit ${r.code}): ${firstLine(r.stderr || r.stdout)}`)
        ctx.log(`preheat of ${ref} took ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      }
    },
    pull(node, ctx) {
      return skopeoPull(AGENT_LISTEN, ctx.image, ctx.pullDest(node))
    },
    async teardown() {
      const stopping = daemons
      daemons = []
      await Promise.all(stopping.map((d) => d.stop()))
    },
  }
}

/**
 * No seeder: one agent per node, as a new user starts them — every agent bootstrapped from the first one, all
 * sharing a swarm key, nothing else. The agents elect one of themselves per blob to pull it from the origin.
 */
export function shoalSeederless(): Scenario {
  let daemons: Daemon[] = []
  return {
    name: 'shoal-seederless',
    title: 'shoal, no seeder (swarm key)',
    async unavailable(ctx) {
      const r = await run(
        { cmd: process.execPath, args: [ctx.config.shoalBin, 'agent', '--help'] },
        { timeoutMs: 30_000 },
      )
      if (r.code !== 0) return `\`shoal agent\` is not there yet (exit ${r.code}: ${firstLine(r.stderr)})`
      const missing = ['--p2p-listen', '--bootstrap', '--swarm-key', '--trust-peer-maps'].filter(
        (f) => !r.stdout.includes(f),
      )
      return missing.length > 0 ? `\`shoal agent\` has no ${missing.join(', ')} flag yet` : undefined
    },
    async setup(ctx: ScenarioContext) {
      const { fleet } = ctx
      const keyFile = join(ctx.dir, 'swarm.key')
      await writeFile(keyFile, generateSwarmKey(), { mode: 0o600 })
      // The first agent's identity is made here, so the others can name it in --bootstrap before it is up.
      const first = fleet.nodes[0]!
      const firstKey = join(ctx.dir, 'first.key')
      const firstId = peerIdFromPrivateKey(await writeNewIdentity(firstKey)).toString()
      const firstAddr = `/ip4/${first.addr}/tcp/${AGENT_P2P_PORT}/p2p/${firstId}`
      for (const node of fleet.nodes) {
        const data = join(ctx.dir, node.name)
        await mkdir(data, { recursive: true })
        const args = [ctx.config.shoalBin, 'agent', '--listen', AGENT_LISTEN, '--origin', ctx.originUrl]
          .concat(['--data', data, '--p2p-listen', `/ip4/${node.addr}/tcp/${AGENT_P2P_PORT}`])
          .concat(['--insecure-registry', ctx.originHost, '--swarm-key', keyFile])
          .concat(node === first ? ['--identity', firstKey] : ['--bootstrap', firstAddr])
          .concat(ctx.config.agentFlags)
        daemons.push(ctx.daemon(node, `agent-${node.name}`, process.execPath, args, shoalEnv()))
      }
      await Promise.all(fleet.nodes.map((n) => ctx.probe(n, `http://${AGENT_LISTEN}/v2/`, READY_WAIT_MS)))
      ctx.log(`${fleet.nodes.length} agents up, no seeder`)
    },
    pull(node, ctx) {
      return skopeoPull(AGENT_LISTEN, ctx.image, ctx.pullDest(node))
    },
    async teardown() {
      const stopping = daemons
      daemons = []
      await Promise.all(stopping.map((d) => d.stop()))
    },
  }
}
