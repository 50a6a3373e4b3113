import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  freePort,
  type PushedImage,
  podmanInspect,
  podmanPull,
  pushImage,
  type Registry,
  removeDir,
  startAgent,
  startRegistry,
  tempDir,
  writeRegistriesConf,
} from '../../harness/e2e/index.ts'

// podman (containers/image) sends no ?ns= to a mirror, so the agent serves it from its default
// origin. The registries.conf `location` is a closed port: only the mirror can make the pull work.
describe('podman through a registries.conf mirror', () => {
  const cleanup = new Cleanup()
  let origin: Registry
  let agent: Agent
  let app: PushedImage

  beforeAll(async () => {
    origin = cleanup.add(await startRegistry(), (r) => r.stop())
    app = cleanup.add(await pushImage(origin.url, 'demo/app', 'v1', { layers: 2, layerBytes: 1024 * 1024 }), (i) =>
      i.cleanup(),
    )
    agent = cleanup.add(await startAgent({ origin: origin.url }), (a) => a.cleanup())
  })
  afterAll(() => cleanup.run())

  it('pulls and unpacks an image with every blob fetched once at the origin', async () => {
    const dir = cleanup.add(await tempDir('podman'), removeDir)
    const location = `127.0.0.1:${await freePort()}`
    const registriesConf = await writeRegistriesConf(join(dir, 'registries.conf'), {
      location,
      mirrors: [agent.host],
    })
    const opts = { registriesConf, storageDir: join(dir, 'storage') }

    await podmanPull(`${location}/demo/app:v1`, opts)

    const pulled = await podmanInspect(`${location}/demo/app:v1`, opts)
    expect(pulled.digest).toBe(app.image.root.digest)
    // Layers are uncompressed tars, so the diff IDs podman computed while unpacking are their digests.
    const layers = JSON.parse(Buffer.from(app.image.root.bytes).toString('utf8')) as {
      layers: { digest: string }[]
    }
    expect(pulled.layers).toEqual(layers.layers.map((l) => l.digest))
    for (const digest of app.blobDigests) expect((await origin.blobGets(digest)).count).toBe(1)
  })
})
