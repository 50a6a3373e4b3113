import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadAgentConfig } from '../../agent/config.ts'
import { type RunningAgent, startAgent } from '../../agent/main.ts'
import { createLogger } from '../../shared/log/index.ts'
import { bytesBySource } from '../../shared/metrics/index.ts'
import { generateSampleImage, pullImage, startDemoOrigin } from '../../shared/sample/index.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { startSeeder } from '../../seeder/main.ts'

const MiB = 1024 * 1024

export interface DemoOptions {
  readonly agents: number
  readonly layers: number
  readonly layerMiB: number
}

/**
 * `npm start`: a whole Shoal swarm, offline, on loopback. An embedded origin holds a generated
 * image; one seeder and N agents (real libp2p over TCP, TLS) pull it at once through the agents'
 * /v2/ mirrors, every digest checked; the summary says where each node's bytes came from.
 */
export async function demoMain(opts: DemoOptions): Promise<number> {
  const work = await mkdtemp(join(tmpdir(), 'shoal-demo-'))
  const say = (line: string) => process.stdout.write(`${line}\n`)
  const log = createLogger({ level: 'error' })
  const stoppers: (() => Promise<void>)[] = []
  try {
    say(`shoal demo: a local swarm — embedded origin, 1 seeder, ${opts.agents} agents, all on 127.0.0.1`)
    const image = await generateSampleImage({
      dir: join(work, 'image'),
      layers: opts.layers,
      layerBytes: opts.layerMiB * MiB,
      seed: 'shoal-demo',
    })
    const imageBytes = image.blobs.reduce((n, b) => n + b.size, 0)
    const origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
    stoppers.push(() => origin.stop())
    say(`origin   ${origin.url}  demo/app:v1, ${image.blobs.length} blobs, ${fmtMiB(imageBytes)}`)
    const chunk = ['--chunk-size', '1MiB']
    const seeder = await startSeeder(
      loadSeederConfig({
        argv: [
          ...['--origin', origin.url, '--data', join(work, 'seeder'), '--p2p-listen', '/ip4/127.0.0.1/tcp/0'],
          ...['--api-listen', '127.0.0.1:0', ...chunk],
        ],
        env: {},
        readFile: () => '',
      }),
      { log },
    )
    stoppers.push(() => seeder.stop())
    const seederAddr = seeder.multiaddrs.find((m) => m.includes('/tcp/'))!
    say(`seeder   ${seederAddr}`)
    const agents: RunningAgent[] = []
    for (let i = 0; i < opts.agents; i++) {
      const agent = await startAgent(
        loadAgentConfig({
          argv: [
            ...['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', join(work, `agent-${i + 1}`)],
            ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--seeder', seederAddr, ...chunk],
          ],
          env: {},
          readFile: () => '',
        }),
        { log },
      )
      stoppers.push(() => agent.stop())
      agents.push(agent)
      say(`agent-${i + 1}  ${agent.url}  (registry mirror: point a runtime here)`)
    }

    say('')
    say(`pulling demo/app:v1 through all ${opts.agents} agents at once…`)
    const started = performance.now()
    const done: (number | undefined)[] = agents.map(() => undefined)
    const progress = setInterval(() => {
      void Promise.all(agents.map((a) => bytesBySource(a.metrics))).then((all) => {
        const line = all
          .map((by, i) => {
            const got = (by['origin'] ?? 0) + (by['seeder'] ?? 0) + (by['peer'] ?? 0)
            return `agent-${i + 1} ${done[i] === undefined ? `${Math.min(99, Math.floor((100 * got) / imageBytes))}%` : 'done'}`
          })
          .join('   ')
        say(`  ${line}`)
      })
    }, 500)
    try {
      await Promise.all(
        agents.map(async (a, i) => {
          await pullImage(a.url, 'demo/app', 'v1')
          done[i] = performance.now() - started
        }),
      )
    } finally {
      clearInterval(progress)
    }

    say('')
    say('node       time      from origin   from seeder   from peers')
    let originSum = 0
    for (const [i, a] of agents.entries()) {
      const by = await bytesBySource(a.metrics)
      originSum += by['origin'] ?? 0
      say(
        `agent-${i + 1}  ${fmtMs(done[i]!)}  ${fmtMiB(by['origin'] ?? 0)}  ${fmtMiB(by['seeder'] ?? 0)}  ${fmtMiB(by['peer'] ?? 0)}`,
      )
    }
    const seederBy = await bytesBySource(seeder.metrics)
    say(`seeder     (pulled) ${fmtMiB(seederBy['origin'] ?? 0)} from the origin`)
    say('')
    const egress = origin.stats.blobBytesServed
    say(
      `every manifest and blob digest verified on every agent. The origin sent ${fmtMiB(egress).trim()} ` +
        `(${(egress / imageBytes).toFixed(2)}× the image) for ${opts.agents} nodes; ` +
        `agents pulled ${fmtMiB(originSum).trim()} from it themselves.`,
    )
    return 0
  } finally {
    for (const c of stoppers.reverse()) await c().catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
}

const fmtMs = (ms: number) => `${ms.toFixed(0).padStart(6)} ms`
const fmtMiB = (b: number) => `${(b / MiB).toFixed(1).padStart(8)} MiB`
