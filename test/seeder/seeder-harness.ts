import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type DemoOrigin, startDemoOrigin } from '../../shared/sample/origin.ts'
import { createLogger, type Logger } from '../../shared/log/index.ts'
import { generateSampleImage, type SampleImage } from '../../shared/sample/index.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { type RunningSeeder, startSeeder } from '../../seeder/main.ts'

export interface SeederRig {
  readonly image: SampleImage
  readonly origin: DemoOrigin
  readonly seeder: RunningSeeder
  stop(): Promise<void>
}

/** A demo origin serving a 2-platform index as `demo/multi:v1`, and one seeder (no agents). */
export async function startSeederRig(
  opts: {
    token?: string
    seederArgs?: string[]
    /** Puts something (an auth proxy) in front of the demo origin; the seeder is pointed at what it returns. */
    front?: (originUrl: string) => Promise<{ url: string; close(): Promise<void> }>
    log?: Logger
  } = {},
): Promise<SeederRig> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-seeder-'))
  const image = await generateSampleImage({
    dir: join(dir, 'image'),
    layers: 2,
    layerBytes: 128 * 1024,
    platforms: ['linux/amd64', 'linux/arm64'],
    seed: 'preheat',
  })
  const origin = await startDemoOrigin({ images: [{ name: 'demo/multi', tag: 'v1', image }] })
  const front = opts.front === undefined ? undefined : await opts.front(origin.url)
  const tokenArgs: string[] = []
  if (opts.token !== undefined) {
    await writeFile(join(dir, 'token'), `${opts.token}\n`)
    tokenArgs.push('--webhook-token-file', join(dir, 'token'))
  }
  const seeder = await startSeeder(
    loadSeederConfig({
      argv: [
        '--origin',
        front?.url ?? origin.url,
        '--data',
        join(dir, 'seeder'),
        '--p2p-listen',
        '/ip4/127.0.0.1/tcp/0',
        '--api-listen',
        '127.0.0.1:0',
        '--chunk-size',
        '64KiB',
        ...tokenArgs,
        ...(opts.seederArgs ?? []),
      ],
      env: {},
      readFile: () => '',
    }),
    { log: opts.log ?? createLogger({ level: 'silent' }) },
  )
  return {
    image,
    origin,
    seeder,
    async stop() {
      await seeder.stop().catch(() => {})
      await front?.close().catch(() => {})
      await origin.stop().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** The config and layer digests of one platform's manifest in a sample index. */
export function platformBlobs(image: SampleImage, arch: string): string[] {
  const m = image.manifests.find((x) => x.platform?.architecture === arch)
  if (m === undefined) throw new Error(`no ${arch} manifest`)
  const doc = JSON.parse(Buffer.from(m.bytes).toString('utf8')) as {
    config: { digest: string }
    layers: { digest: string }[]
  }
  return [doc.config.digest, ...doc.layers.map((l) => l.digest)]
}

/** Waits until the preheater's job is finished (in-process, through its public view). */
export async function waitJob(
  rig: SeederRig,
  id: string,
): Promise<NonNullable<ReturnType<RunningSeeder['preheater']['get']>>> {
  for (;;) {
    const job = rig.seeder.preheater.get(id)
    if (job === undefined) throw new Error(`no job ${id}`)
    if (job.state === 'done' || job.state === 'failed') return job
    await new Promise((r) => setTimeout(r, 10))
  }
}
