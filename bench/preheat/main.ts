/**
 * Preheat figures, one run each, against a real docker-registry on 127.0.0.1 whose `notifications:` point at
 * an in-process seeder:
 *
 *   node bench/preheat/main.ts [--layer-mib 64] [--layers 4]
 *
 * (a) push → seeded: `skopeo copy` pushes a 256 MiB image (4 × 64 MiB layers) from a staging registry to the
 *     origin; the origin notifies the seeder, which preheats it. Measured from skopeo's exit to the preheat
 *     job reporting done (every blob pulled, verified, chunk maps signed).
 * (b) a first agent's cold pull (`skopeo copy docker://agent/… dir:`) of the preheated image, against a
 *     fresh agent's cold pull of a same-size image the seeder never saw (it is then pulled origin → seeder →
 *     agent chunk by chunk).
 *
 * Needs docker-registry and skopeo (test/e2e/setup.sh installs them, as root).
 */
import { writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseFlags } from '../args.ts'
import { createLogger } from '../../shared/log/index.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { startSeeder } from '../../seeder/main.ts'
import {
  Cleanup,
  freePort,
  pushImage,
  removeDir,
  skopeoCopy,
  startAgent,
  startRegistry,
  tempDir,
} from '../../harness/e2e/index.ts'

const MiB = 1024 * 1024
const TOKEN = 'bench-preheat-token'

const { values } = parseFlags(process.argv.slice(2), {
  'layer-mib': { type: 'string', default: '64' },
  layers: { type: 'string', default: '4' },
} as const)
const layerBytes = Number(values['layer-mib']) * MiB
const layers = Number(values.layers)

const t0 = performance.now()
const log = (m: string) => process.stderr.write(`[preheat ${((performance.now() - t0) / 1000).toFixed(1)} s] ${m}\n`)
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`

async function main(): Promise<void> {
  const cleanup = new Cleanup()
  try {
    const dir = cleanup.add(await tempDir('bench-preheat'), removeDir)
    const apiPort = await freePort()
    const origin = cleanup.add(
      await startRegistry({ notifications: { url: `http://127.0.0.1:${apiPort}/api/v1/notifications`, token: TOKEN } }),
      (r) => r.stop(),
    )
    const staging = cleanup.add(await startRegistry(), (r) => r.stop())
    await writeFile(join(dir, 'token'), TOKEN)
    const seeder = await startSeeder(
      loadSeederConfig({
        argv: [
          ...['--origin', origin.url, '--data', join(dir, 'seeder'), '--p2p-listen', '/ip4/127.0.0.1/tcp/0'],
          ...['--api-listen', `127.0.0.1:${apiPort}`, '--webhook-token-file', join(dir, 'token')],
          ...['--notify-repositories', 'bench/hot'],
        ],
        env: {},
        readFile: () => '',
      }),
      { log: createLogger({ level: 'warn' }) },
    )
    cleanup.add(seeder, (s) => s.stop())
    const size = layers * layerBytes
    log(`generating and staging two ${size / MiB} MiB images`)
    const hot = cleanup.add(await pushImage(staging.url, 'bench/hot', 'v1', { layers, layerBytes, seed: 'hot' }), (i) =>
      i.cleanup(),
    )
    // Never notified (not a --notify-repositories match): the seeder first hears of it from the agent.
    cleanup.add(await pushImage(origin.url, 'bench/cold', 'v1', { layers, layerBytes, seed: 'cold' }), (i) =>
      i.cleanup(),
    )

    log('(a) skopeo copy staging → origin; the origin notifies the seeder')
    const pushStart = performance.now()
    await skopeoCopy(`docker://${staging.host}/bench/hot:v1`, `docker://${origin.host}/bench/hot:v1`, {
      preserveDigests: true,
    })
    const pushed = performance.now()
    let seededAt: number | undefined
    while (seededAt === undefined) {
      for (const id of seeder.preheater.jobs()) {
        const j = seeder.preheater.get(id)
        if (j?.state === 'failed') throw new Error(`preheat failed: ${j.error}`)
        if (j?.state === 'done' && j.image.endsWith(`bench/hot@${hot.image.root.digest}`)) seededAt = performance.now()
      }
      if (seededAt === undefined) await new Promise((r) => setTimeout(r, 10))
    }
    const originAfterSeed = await origin.blobGets()

    const seederAddr = seeder.multiaddrs.find((m) => m.includes('/tcp/'))!
    const pull = async (name: string): Promise<number> => {
      const agent = await startAgent({
        origin: origin.url,
        extraArgs: ['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--seeder', seederAddr],
      })
      try {
        const start = performance.now()
        await skopeoCopy(`docker://${agent.host}/${name}:v1`, `dir:${join(dir, name.replace('/', '-'))}`)
        return performance.now() - start
      } finally {
        await agent.cleanup()
      }
    }
    log('(b) first agent, preheated image')
    const warmMs = await pull('bench/hot')
    const originAfterHot = await origin.blobGets()
    log('(b) first agent, image the seeder never saw')
    const coldMs = await pull('bench/cold')

    const lines = [
      `machine: ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}; image ${size / MiB} MiB (${layers} × ${layerBytes / MiB} MiB)`,
      `(a) skopeo push to the origin: ${secs(pushed - pushStart)}; push finished → seeded (notification, pull, sign): ${secs(seededAt - pushed)}`,
      `    origin blob egress by then: ${originAfterSeed.count} GETs, ${(originAfterSeed.bytes / MiB).toFixed(1)} MiB`,
      `(b) first agent's cold pull, preheated: ${secs(warmMs)}; not preheated: ${secs(coldMs)}; ratio ${(coldMs / warmMs).toFixed(2)}×`,
      `    origin blob egress during the preheated pull: ${originAfterHot.count - originAfterSeed.count} GETs`,
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
  } finally {
    await cleanup.run()
  }
}

await main()
