import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../shared/log/index.ts'
import { generateSampleImage, hostPlatform, pushSampleImage, type SampleImage } from '../../shared/sample/index.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { type RunningSeeder, startSeeder } from '../../seeder/main.ts'
import type { PreheatJobView } from '../../seeder/preheat.ts'
import {
  type Agent,
  Cleanup,
  freePort,
  type Registry,
  removeDir,
  skopeoCopy,
  startAgent,
  startRegistry,
  tempDir,
} from '../../harness/e2e/index.ts'

const TOKEN = 'e2e-webhook-token'
const OTHER = hostPlatform() === 'linux/arm64' ? 'linux/amd64' : 'linux/arm64'

/** Digests of the config and layers of one platform of a sample index. */
function platformBlobs(image: SampleImage, platform: string): string[] {
  const [os, arch] = platform.split('/')
  const m = image.manifests.find((x) => x.platform?.os === os && x.platform?.architecture === arch)!
  const doc = JSON.parse(Buffer.from(m.bytes).toString('utf8')) as {
    config: { digest: string }
    layers: { digest: string }[]
  }
  return [doc.config.digest, ...doc.layers.map((l) => l.digest)]
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('push → registry notification → seeder preheat → agents pull', () => {
  const cleanup = new Cleanup()
  let dir: string
  let staging: Registry
  let origin: Registry
  let seeder: RunningSeeder
  let app: SampleImage
  let multi: SampleImage

  beforeAll(async () => {
    dir = cleanup.add(await tempDir('preheat-e2e'), removeDir)
    const apiPort = await freePort()
    // The origin's notifications go to the seeder's API; the seeder is started once the origin's port is known
    // (the registry queues and retries events until then).
    origin = cleanup.add(
      await startRegistry({
        notifications: { url: `http://127.0.0.1:${apiPort}/api/v1/notifications`, token: TOKEN },
      }),
      (r) => r.stop(),
    )
    staging = cleanup.add(await startRegistry(), (r) => r.stop())
    await writeFile(join(dir, 'token'), `${TOKEN}\n`)
    seeder = await startSeeder(
      loadSeederConfig({
        argv: [
          ...['--origin', origin.url, '--data', join(dir, 'seeder'), '--p2p-listen', '/ip4/127.0.0.1/tcp/0'],
          ...['--api-listen', `127.0.0.1:${apiPort}`, '--webhook-token-file', join(dir, 'token')],
          ...['--notify-repositories', 'team/app', '--chunk-size', '1MiB'],
        ],
        env: {},
        readFile: () => '',
      }),
      { log: createLogger({ level: 'silent' }) },
    )
    cleanup.add(seeder, (s) => s.stop())
    await mkdir(join(dir, 'images'))
    const platforms = [hostPlatform(), OTHER]
    app = await generateSampleImage({
      dir: join(dir, 'images/app'),
      layers: 3,
      layerBytes: 3 * 1024 * 1024,
      seed: 'e2e-preheat',
    })
    multi = await generateSampleImage({
      dir: join(dir, 'images/multi'),
      layers: 2,
      layerBytes: 1024 * 1024,
      platforms,
      seed: 'e2e-multi',
    })
    await pushSampleImage(staging.url, 'team/app', 'v1', app)
    await pushSampleImage(origin.url, 'team/multi', 'v1', multi)
    await origin.resetLog()
  }, 120_000)
  afterAll(() => cleanup.run(), 60_000)

  it('seeds a pushed image with no agent asking; agents then pull it without one more origin blob GET', async () => {
    // CI pushes with skopeo; the registry tells the seeder.
    await skopeoCopy(`docker://${staging.host}/team/app:v1`, `docker://${origin.host}/team/app:v1`, {
      preserveDigests: true,
    })
    await until('the seeder to hold every blob', async () => {
      const ids = seeder.preheater.jobs()
      const jobs = ids.map((id) => seeder.preheater.get(id)!)
      const done = jobs.some((j) => j.state === 'done' && j.image.endsWith(`team/app@${app.root.digest}`))
      return done ? true : undefined
    })
    for (const b of app.blobs) expect((await origin.blobGets(b.digest)).count, b.digest).toBe(1)
    const egress = await origin.blobGets()
    expect(egress.bytes).toBe(app.blobs.reduce((n, b) => n + b.size, 0))

    const seederAddr = seeder.multiaddrs.find((m) => m.includes('/tcp/'))!
    const agents: Agent[] = []
    for (let i = 0; i < 2; i++)
      agents.push(
        cleanup.add(
          await startAgent({
            origin: origin.url,
            extraArgs: ['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--seeder', seederAddr, '--chunk-size', '1MiB'],
          }),
          (a) => a.cleanup(),
        ),
      )
    for (const [i, a] of agents.entries()) {
      const out = join(dir, `pulled-${i}`)
      await skopeoCopy(`docker://${a.host}/team/app:v1`, `dir:${out}`)
      // Everything came through the swarm (the seeder, the other agent), nothing from the origin.
      expect(await a.metric('shoal_bytes_received_total')).toBeGreaterThanOrEqual(
        app.blobs.reduce((n, b) => n + b.size, 0),
      )
      expect(await a.metric('shoal_bytes_received_total', { source: 'origin' })).toBe(0)
    }
    // Counted at the origin: the seeder's one pull per blob is all the blob egress there was.
    expect(await origin.blobGets()).toEqual(egress)
  }, 180_000)

  it('preheats one platform of a multi-arch index: only its blobs leave the origin', async () => {
    await origin.resetLog()
    const res = await fetch(`http://127.0.0.1:${new URL(seeder.apiUrl).port}/api/v1/preheat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'team/multi:v1', platforms: [OTHER] }),
    })
    expect(res.status).toBe(202)
    const { id } = (await res.json()) as { id: string }
    const job = await until('the job', async () => {
      const j = (await (await fetch(`${seeder.apiUrl}/api/v1/preheat/${id}`)).json()) as PreheatJobView
      return j.state === 'done' || j.state === 'failed' ? j : undefined
    })
    expect(job.state).toBe('done')
    const wanted = platformBlobs(multi, OTHER)
    for (const d of wanted) expect((await origin.blobGets(d)).count, d).toBe(1)
    const got = (await origin.requests()).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))
    expect(got.map((r) => r.path.slice(r.path.lastIndexOf('/') + 1)).sort()).toEqual([...wanted].sort())
  }, 120_000)

  it('answers an unknown image with a failed job carrying the origin status', async () => {
    const { id } = seeder.preheater.submit('team/nope:v1')
    const job = await until('the job', async () => {
      const j = seeder.preheater.get(id)
      return j?.state === 'failed' || j?.state === 'done' ? j : undefined
    })
    expect(job.state).toBe('failed')
    expect(job.originStatus).toBe(404)
  })
})
