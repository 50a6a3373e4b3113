import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  dirBlobs,
  fetchBlob,
  fetchManifest,
  type PushedImage,
  pushImage,
  type Registry,
  removeDir,
  skopeoCopy,
  startAgent,
  startRegistry,
  tempDir,
} from '../../harness/e2e/index.ts'

describe('origin down', () => {
  const cleanup = new Cleanup()
  let origin: Registry
  let agent: Agent
  let app: PushedImage

  beforeAll(async () => {
    origin = await startRegistry()
    cleanup.add(origin, (r) => r.stop())
    app = cleanup.add(await pushImage(origin.url, 'demo/app', 'v1', { layers: 2, layerBytes: 1024 * 1024 }), (i) =>
      i.cleanup(),
    )
    // A zero tag TTL makes the agent ask the origin for the tag on every request, so the stale
    // path is taken at once instead of after the default TTL.
    agent = cleanup.add(await startAgent({ origin: origin.url, extraArgs: ['--tag-ttl', '0s'] }), (a) => a.cleanup())
    // Warm the agent's cache with a real pull, then take the origin away.
    await skopeoCopy(`docker://${agent.host}/demo/app:v1`, `dir:${cleanup.add(await tempDir('warm'), removeDir)}`)
    await origin.stop()
  })
  afterAll(() => cleanup.run())

  it('serves a cached tag stale, saying so in a Warning header', async () => {
    const res = await fetchManifest(agent.url, 'demo/app', 'v1')

    expect(res.status).toBe(200)
    expect(res.bytes.equals(Buffer.from(app.image.root.bytes))).toBe(true)
    expect(res.headers.get('docker-content-digest')).toBe(app.image.root.digest)
    // RFC 7234 warn-code, e.g. `110 - "Response is Stale"`.
    expect(res.headers.get('warning')).toMatch(/^1\d\d /)
  })

  it('serves cached blobs', async () => {
    for (const blob of app.image.blobs) {
      const res = await fetchBlob(agent.url, 'demo/app', blob.digest)
      expect(res.status).toBe(200)
      expect(res.digest).toBe(blob.digest)
    }
  })

  it('lets a real client pull the cached image', async () => {
    const out = cleanup.add(await tempDir('stale-out'), removeDir)

    await skopeoCopy(`docker://${agent.host}/demo/app:v1`, `dir:${out}`)

    expect(new Set((await dirBlobs(out)).keys())).toEqual(app.blobDigests)
  })

  it('does not invent a tag it never saw', async () => {
    const res = await fetchManifest(agent.url, 'demo/app', 'never-pulled')

    expect(res.status).not.toBe(200)
  })
})
