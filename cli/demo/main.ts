import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadAgentConfig } from '../../agent/config.ts'
import { startAgent } from '../../agent/main.ts'
import { createLogger } from '../../shared/log/index.ts'
import { generateSampleImage } from '../../shared/sample/index.ts'
import { startDemoOrigin } from './origin.ts'
import { pullImage } from './pull.ts'

const MiB = 1024 * 1024

/**
 * `npm start`: everything offline on loopback. An embedded origin holds a generated multi-layer
 * image; a Shoal agent mirrors it; the image is pulled through the agent cold, then warm, every
 * digest checked, and the summary shows where the bytes came from.
 */
export async function demoMain(argv: readonly string[], _env: NodeJS.ProcessEnv): Promise<number> {
  const layerMiB = Number(argv[argv.indexOf('--layer-mib') + 1]) || 16
  const work = await mkdtemp(join(tmpdir(), 'shoal-demo-'))
  const say = (line: string) => process.stdout.write(`${line}\n`)
  try {
    say(`shoal demo: generating a sample image (3 layers × ${layerMiB} MiB) in ${work}`)
    const image = await generateSampleImage({
      dir: join(work, 'image'),
      layers: 3,
      layerBytes: layerMiB * MiB,
      seed: 'shoal-demo',
    })
    const origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
    say(`origin:  ${origin.url} (embedded demo registry)`)
    const config = loadAgentConfig({
      argv: ['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', join(work, 'agent'), '--log-level', 'warn'],
      env: {},
      readFile: () => '',
    })
    const agent = await startAgent(config, { log: createLogger({ level: 'warn', name: 'agent' }) })
    say(`agent:   ${agent.url} (registry mirror; point your runtime here)`)
    try {
      const cold = await pullImage(agent.url, 'demo/app', 'v1')
      const afterCold = origin.stats.blobBytesServed
      const warm = await pullImage(agent.url, 'demo/app', 'v1')
      const total = cold.blobBytes
      say('')
      say(`pull         time       blob bytes   from origin`)
      say(`cold      ${fmtMs(cold.ms)}   ${fmtMiB(total)}   ${fmtMiB(afterCold)}`)
      say(
        `warm      ${fmtMs(warm.ms)}   ${fmtMiB(warm.blobBytes)}   ${fmtMiB(origin.stats.blobBytesServed - afterCold)}`,
      )
      say('')
      say(`every manifest and blob digest verified; origin sent ${(afterCold / total).toFixed(2)}× the image bytes`)
    } finally {
      await agent.close()
      await origin.close()
    }
    return 0
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

const fmtMs = (ms: number) => `${ms.toFixed(0).padStart(6)} ms`
const fmtMiB = (b: number) => `${(b / MiB).toFixed(1).padStart(8)} MiB`
