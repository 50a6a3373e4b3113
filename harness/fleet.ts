import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { join } from 'node:path'
import { loadAgentConfig } from '../agent/config.ts'
import { type RunningAgent, startAgent } from '../agent/main.ts'
import type { DestinationStream } from 'pino'
import { createLogger } from '../shared/log/index.ts'
import { generateSwarmKey, writeNewIdentity } from '../shared/p2p/index.ts'
import { withPeerId } from '../shared/swarm/index.ts'
import { type DemoOrigin, generateSampleImage, type SampleImage, startDemoOrigin } from '../shared/sample/index.ts'
import { loadSeederConfig } from '../seeder/config.ts'
import { type RunningSeeder, startSeeder } from '../seeder/main.ts'

export interface Fleet {
  readonly dir: string
  readonly image: SampleImage
  readonly origin: DemoOrigin
  readonly seeder: RunningSeeder
  readonly agents: RunningAgent[]
  startAgent(i: number, extra?: string[]): Promise<RunningAgent>
  stop(): Promise<void>
}

export interface FleetOptions {
  readonly agents: number
  readonly layers?: number
  readonly layerBytes?: number
  readonly chunkSize?: string
  readonly agentArgs?: string[]
  /** Extra seeder flags, e.g. `--upload-rate 4MiB` to make transfers slow enough to interrupt. */
  readonly seederArgs?: string[]
  readonly logLevel?: string
  /** Where the fleet's nodes log (default stdout), e.g. a LogTail's stream to print on failure. */
  readonly logDestination?: DestinationStream
}

/** What every fleet starts from: a temp dir, the sample image served by a demo origin, the chunk size, a logger. */
async function fleetBase(prefix: string, opts: FleetOptions) {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const image = await generateSampleImage({
    dir: join(dir, 'image'),
    layers: opts.layers ?? 3,
    layerBytes: opts.layerBytes ?? 2 * 1024 * 1024,
    seed: 'fleet',
  })
  const origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
  const chunk = opts.chunkSize ?? '256KiB'
  const log = createLogger({
    level: opts.logLevel ?? process.env['SHOAL_TEST_LOG'] ?? 'silent',
    ...(opts.logDestination === undefined ? {} : { destination: opts.logDestination }),
  })
  return { dir, image, origin, chunk, log }
}

/**
 * An agent on 127.0.0.1 of `origin`, its data in `<dir>/agent-<i>`, listening on `p2pListen`, as the test fleets
 * start them: `extra` adds flags (seeders, bootstrap, chunk size, …).
 */
export async function startLocalAgent(
  at: { origin: DemoOrigin; dir: string; index: number; p2pListen?: string },
  extra: readonly string[],
  log: ReturnType<typeof createLogger>,
): Promise<RunningAgent> {
  return startAgent(
    loadAgentConfig({
      argv: [
        ...['--listen', '127.0.0.1:0', '--origin', at.origin.url, '--data', join(at.dir, `agent-${at.index}`)],
        ...['--p2p-listen', at.p2pListen ?? '/ip4/127.0.0.1/tcp/0'],
        ...extra,
      ],
      env: {},
      readFile: () => '',
    }),
    { log },
  )
}

/** One demo origin, one seeder and N agents, all real (HTTP, libp2p over TCP) on 127.0.0.1. */
export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const { dir, image, origin, chunk, log } = await fleetBase('shoal-fleet-', opts)
  const seeder = await startSeeder(
    loadSeederConfig({
      argv: [
        '--origin',
        origin.url,
        '--data',
        join(dir, 'seeder'),
        '--p2p-listen',
        '/ip4/127.0.0.1/tcp/0',
        '--api-listen',
        '127.0.0.1:0',
        '--chunk-size',
        chunk,
        ...(opts.seederArgs ?? []),
      ],
      env: {},
      readFile: () => '',
    }),
    { log },
  )
  const seederAddr = seeder.multiaddrs.find((m) => m.includes('/tcp/'))!
  const agents: RunningAgent[] = []
  // Every agent ever started, so one restarted on the same data dir is stopped too (a second stop() of one is a no-op).
  const started: RunningAgent[] = []
  const start = async (i: number, extra: string[] = []): Promise<RunningAgent> => {
    const agent = await startLocalAgent(
      { origin, dir, index: i },
      ['--seeder', withPeerId(seederAddr, seeder.peerId), '--chunk-size', chunk, ...(opts.agentArgs ?? []), ...extra],
      log,
    )
    started.push(agent)
    return agent
  }
  for (let i = 0; i < opts.agents; i++) agents.push(await start(i))
  return {
    dir,
    image,
    origin,
    seeder,
    agents,
    startAgent: start,
    async stop() {
      for (const a of started) await a.stop().catch(() => {})
      await seeder.stop().catch(() => {})
      await origin.stop().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface PeerFleet {
  readonly dir: string
  readonly image: SampleImage
  readonly origin: DemoOrigin
  readonly agents: RunningAgent[]
  /** Starts agent `i` bootstrapped from agent 0 (unless it is agent 0), with the fleet's flags plus `extra`. */
  startAgent(i: number, extra?: string[]): Promise<RunningAgent>
  stop(): Promise<void>
}

export interface PeerFleetOptions extends Omit<FleetOptions, 'seederArgs'> {
  /** Writes one swarm key and gives it to every agent (`--swarm-key`). Default true. */
  readonly swarmKey?: boolean
  /**
   * Starts every agent at the same moment, as a DaemonSet does: agent 0 gets a fixed port and an identity made
   * beforehand, so the others name it in --bootstrap before it is up (their first dial may find nobody there).
   */
  readonly together?: boolean
}

/**
 * One demo origin and N agents with no seeder, as a new user would start them: each bootstrapped from the first
 * one, all on 127.0.0.1, all sharing a swarm key unless told otherwise.
 */
export async function startPeerFleet(opts: PeerFleetOptions): Promise<PeerFleet> {
  const { dir, image, origin, chunk, log } = await fleetBase('shoal-peers-', opts)
  const keyFile = join(dir, 'swarm.key')
  if (opts.swarmKey !== false) await writeFile(keyFile, generateSwarmKey())
  const agents: RunningAgent[] = []
  const started: RunningAgent[] = []
  let firstFixed: { port: number; key: string; addr: string } | undefined
  if (opts.together === true) {
    const port = await freePort()
    const key = join(dir, 'first.key')
    const id = peerIdFromPrivateKey(await writeNewIdentity(key)).toString()
    firstFixed = { port, key, addr: `/ip4/127.0.0.1/tcp/${port}/p2p/${id}` }
  }
  const bootstrapFor = (i: number): string[] => {
    if (i === 0) return firstFixed === undefined ? [] : ['--identity', firstFixed.key]
    if (firstFixed !== undefined) return ['--bootstrap', firstFixed.addr]
    const first = agents[0] ?? started[0]
    if (first === undefined) return []
    return [
      '--bootstrap',
      withPeerId(
        first.multiaddrs.find((m) => m.includes('/tcp/'))!,
        first.peerId!,
      ),
    ]
  }
  const start = async (i: number, extra: string[] = []): Promise<RunningAgent> => {
    const bootstrap = bootstrapFor(i)
    const listen =
      i === 0 && firstFixed !== undefined ? `/ip4/127.0.0.1/tcp/${firstFixed.port}` : '/ip4/127.0.0.1/tcp/0'
    const agent = await startLocalAgent(
      { origin, dir, index: i, p2pListen: listen },
      [
        ...bootstrap,
        ...(opts.swarmKey !== false ? ['--swarm-key', keyFile] : []),
        ...['--chunk-size', chunk, ...(opts.agentArgs ?? []), ...extra],
      ],
      log,
    )
    let closed: Promise<void> | undefined
    const once: RunningAgent = { ...agent, stop: () => (closed ??= agent.stop()) }
    started.push(once)
    return once
  }
  if (opts.together === true) {
    // Agent 0 a moment after the others, so their first bootstrap dial finds nobody, as it may in a rollout.
    const all = await Promise.all(
      Array.from({ length: opts.agents }, async (_, i) => {
        if (i === 0) await new Promise((r) => setTimeout(r, 200))
        return start(i)
      }),
    )
    agents.push(...all)
  } else {
    for (let i = 0; i < opts.agents; i++) agents.push(await start(i))
  }
  return {
    dir,
    image,
    origin,
    agents,
    startAgent: start,
    async stop() {
      for (const a of started) await a.stop().catch(() => {})
      await origin.stop().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** A TCP port free on 127.0.0.1 right now. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}
