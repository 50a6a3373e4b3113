import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadAgentConfig } from '../agent/config.ts'
import { type RunningAgent, startAgent } from '../agent/main.ts'
import { createLogger } from '../shared/log/index.ts'
import { type DemoOrigin, generateSampleImage, type SampleImage, startDemoOrigin } from '../shared/sample/index.ts'
import { loadSeederConfig } from '../seeder/config.ts'
import { type RunningSeeder, startSeeder } from '../seeder/main.ts'
import { withPeerId } from '../shared/swarm/index.ts'

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
}

/** One demo origin, one seeder and N agents, all real (HTTP, libp2p over TCP) on 127.0.0.1. */
export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-fleet-'))
  const image = await generateSampleImage({
    dir: join(dir, 'image'),
    layers: opts.layers ?? 3,
    layerBytes: opts.layerBytes ?? 2 * 1024 * 1024,
    seed: 'fleet',
  })
  const origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
  const chunk = opts.chunkSize ?? '256KiB'
  const log = createLogger({ level: opts.logLevel ?? process.env['SHOAL_TEST_LOG'] ?? 'silent' })
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
    const agent = await startAgent(
      loadAgentConfig({
        argv: [
          '--listen',
          '127.0.0.1:0',
          '--origin',
          origin.url,
          '--data',
          join(dir, `agent-${i}`),
          '--p2p-listen',
          '/ip4/127.0.0.1/tcp/0',
          '--seeder',
          withPeerId(seederAddr, seeder.peerId),
          '--chunk-size',
          chunk,
          ...(opts.agentArgs ?? []),
          ...extra,
        ],
        env: {},
        readFile: () => '',
      }),
      { log },
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
