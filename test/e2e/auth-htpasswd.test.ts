import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  basicAuth,
  Cleanup,
  CommandError,
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

const alice = { username: 'alice', password: 'alice-secret-1' }
const wrong = { username: 'alice', password: 'not-her-password' }

// distribution with `auth: htpasswd` answers 401 `Basic realm=…` to anything without valid credentials.
describe('an htpasswd origin', () => {
  const cleanup = new Cleanup()
  let origin: Registry
  let app: PushedImage

  beforeAll(async () => {
    origin = cleanup.add(await startRegistry({ auth: 'htpasswd', users: [alice] }), (r) => r.stop())
    app = cleanup.add(
      await pushImage(origin.url, 'private/app', 'v1', { layers: 2, layerBytes: 1024 * 1024 }, alice),
      (i) => i.cleanup(),
    )
  })
  afterAll(() => cleanup.run())

  it('is pulled anonymously through an agent configured with credentials for it', async () => {
    const agent = cleanup.add(
      await startAgent({ origin: origin.url, config: { registries: { [origin.host]: alice } } }),
      (a) => a.cleanup(),
    )
    const out = cleanup.add(await tempDir('out'), removeDir)

    await skopeoCopy(`docker://${agent.host}/private/app:v1`, `dir:${out}`)

    const blobs = await dirBlobs(out)
    expect(new Set(blobs.keys())).toEqual(app.blobDigests)
    for (const blob of blobs.values()) expect(blob.computed).toBe(blob.named)
  })

  describe('through an agent without credentials of its own', () => {
    let agent: Agent

    beforeAll(async () => {
      agent = cleanup.add(await startAgent({ origin: origin.url }), (a) => a.cleanup())
    })

    it("forwards the client's own credentials", async () => {
      const out = cleanup.add(await tempDir('out'), removeDir)

      await skopeoCopy(`docker://${agent.host}/private/app:v1`, `dir:${out}`, { srcCreds: alice })

      expect(new Set((await dirBlobs(out)).keys())).toEqual(app.blobDigests)
    })

    it('lets a 401 for wrong credentials reach the client, for manifests and cached blobs alike', async () => {
      // Fill the agent's cache with alice's credentials first: the cache must not bypass the origin's say.
      for (const digest of app.blobDigests) {
        const res = await fetchBlob(agent.url, 'private/app', digest, { authorization: basicAuth(alice) })
        expect(res.status).toBe(200)
        expect(res.digest).toBe(digest)
      }
      const authorization = basicAuth(wrong)

      expect((await fetchManifest(agent.url, 'private/app', 'v1', { authorization })).status).toBe(401)
      for (const digest of app.blobDigests) {
        expect((await fetchBlob(agent.url, 'private/app', digest, { authorization })).status).toBe(401)
      }
      const out = cleanup.add(await tempDir('out'), removeDir)
      const copy = skopeoCopy(`docker://${agent.host}/private/app:v1`, `dir:${out}`, { srcCreds: wrong })
      await expect(copy).rejects.toBeInstanceOf(CommandError)
      await expect(copy).rejects.toThrow(/unauthorized|401/i)
    })

    it('refuses an anonymous client', async () => {
      const res = await fetchManifest(agent.url, 'private/app', 'v1')

      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic /i)
    })
  })
})
