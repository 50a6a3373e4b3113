import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  dirBlobs,
  type PushedImage,
  pushImage,
  type Registry,
  removeDir,
  skopeoCopy,
  skopeoInspect,
  startAgent,
  startRegistry,
  tempDir,
} from '../../harness/e2e/index.ts'

// skopeo (containers/image) is the client here: it pings /v2/, GETs the manifest by tag, then blobs.
describe('skopeo through the agent', () => {
  const cleanup = new Cleanup()
  let origin: Registry
  let agent: Agent
  let app: PushedImage

  beforeAll(async () => {
    origin = cleanup.add(await startRegistry(), (r) => r.stop())
    app = cleanup.add(await pushImage(origin.url, 'demo/app', 'v1', { layers: 3, layerBytes: 2 * 1024 * 1024 }), (i) =>
      i.cleanup(),
    )
    agent = cleanup.add(await startAgent({ origin: origin.url }), (a) => a.cleanup())
  })
  afterAll(() => cleanup.run())

  it('copies an image to dir: with every blob identical to the origin', async () => {
    await origin.resetLog()
    const out = cleanup.add(await tempDir('skopeo-out'), removeDir)

    await skopeoCopy(`docker://${agent.host}/demo/app:v1`, `dir:${out}`)

    const blobs = await dirBlobs(out)
    expect(new Set(blobs.keys())).toEqual(app.blobDigests)
    for (const blob of blobs.values()) expect(blob.computed).toBe(blob.named)
    for (const b of app.image.blobs) expect(blobs.get(b.digest)?.size).toBe(b.size)
    // No conversion was asked for, so the manifest is the origin's, byte for byte.
    expect((await readFile(join(out, 'manifest.json'))).equals(Buffer.from(app.image.root.bytes))).toBe(true)
    // The agent fetched each blob from the origin exactly once.
    for (const digest of app.blobDigests) expect((await origin.blobGets(digest)).count).toBe(1)
  })

  it('serves a second copy of the same image from its cache', async () => {
    await skopeoCopy(`docker://${agent.host}/demo/app:v1`, `dir:${cleanup.add(await tempDir('skopeo-out'), removeDir)}`)
    await origin.resetLog()
    const out = cleanup.add(await tempDir('skopeo-out'), removeDir)

    await skopeoCopy(`docker://${agent.host}/demo/app:v1`, `dir:${out}`)

    expect(new Set((await dirBlobs(out)).keys())).toEqual(app.blobDigests)
    expect((await origin.blobGets()).count).toBe(0)
  })

  it('passes a push through to the origin', async () => {
    await origin.resetLog()

    await skopeoCopy(`docker://${origin.host}/demo/app:v1`, `docker://${agent.host}/pushed/app:v2`)

    const pushedManifest = await skopeoInspect(`docker://${origin.host}/pushed/app:v2`, { raw: true })
    expect(pushedManifest).toBe(Buffer.from(app.image.root.bytes).toString('utf8'))
    const puts = (await origin.requests()).filter((e) => e.method === 'PUT' && e.status === 201)
    expect(puts.map((e) => e.path)).toContain('/v2/pushed/app/manifests/v2')
    // Every blob reached the origin: uploaded, or mounted from demo/app (both are origin-side facts).
    for (const digest of app.blobDigests) {
      const head = await fetch(`${origin.url}/v2/pushed/app/blobs/${digest}`, { method: 'HEAD' })
      expect(head.status).toBe(200)
    }
  })
})
