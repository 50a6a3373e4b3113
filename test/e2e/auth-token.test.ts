import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  dirBlobs,
  fetchBlob,
  fetchManifest,
  freePort,
  type PushedImage,
  pushImage,
  type Registry,
  removeDir,
  skopeoCopy,
  startAgent,
  startContainerd,
  startRegistry,
  startTokenServer,
  type TokenServer,
  tempDir,
  writeHostsToml,
} from '../../harness/e2e/index.ts'

const pusher = { username: 'ci', password: 'ci-secret-1' }
const alice = { username: 'alice', password: 'alice-secret-1' }
const bob = { username: 'bob', password: 'bob-secret-1' }

// distribution with `auth: token` answers 401 `Bearer realm=…,service=…,scope=…`; the token server
// decides who gets which repository. alice may pull team/secret and team/shared; bob only team/shared.
describe('a token-auth origin', () => {
  const cleanup = new Cleanup()
  let tokens: TokenServer
  let origin: Registry
  let secret: PushedImage
  let shared: PushedImage

  beforeAll(async () => {
    tokens = cleanup.add(
      await startTokenServer({
        users: [
          { ...pusher, repositories: { '*': ['*'] } },
          { ...alice, repositories: { 'team/secret': ['pull'], 'team/shared': ['pull'] } },
          { ...bob, repositories: { 'team/shared': ['pull'] } },
        ],
      }),
      (t) => t.stop(),
    )
    origin = cleanup.add(await startRegistry({ auth: 'token', token: tokens }), (r) => r.stop())
    const layers = { layers: 2, layerBytes: 512 * 1024 }
    secret = cleanup.add(await pushImage(origin.url, 'team/secret', 'v1', layers, pusher), (i) => i.cleanup())
    shared = cleanup.add(await pushImage(origin.url, 'team/shared', 'v1', layers, pusher), (i) => i.cleanup())
  })
  afterAll(() => cleanup.run())

  it('is pulled anonymously through an agent configured with credentials for it', async () => {
    const agent = cleanup.add(
      await startAgent({ origin: origin.url, config: { registries: { [origin.host]: alice } } }),
      (a) => a.cleanup(),
    )
    const out = cleanup.add(await tempDir('out'), removeDir)

    await skopeoCopy(`docker://${agent.host}/team/secret:v1`, `dir:${out}`)

    expect(new Set((await dirBlobs(out)).keys())).toEqual(secret.blobDigests)
    // The agent did the token dance as alice.
    expect(tokens.requests.some((r) => r.username === alice.username && r.status === 200)).toBe(true)
  })

  describe('through an agent without credentials of its own', () => {
    let agent: Agent

    beforeAll(async () => {
      agent = cleanup.add(await startAgent({ origin: origin.url }), (a) => a.cleanup())
    })

    it('denies an anonymous client', async () => {
      expect((await fetchManifest(agent.url, 'team/secret', 'v1')).status).toBe(401)
      const anonymous = await tokens.fetchToken(['repository:team/secret:pull'])
      const res = await fetchManifest(agent.url, 'team/secret', 'v1', { authorization: `Bearer ${anonymous}` })
      expect([401, 403]).toContain(res.status)
    })

    it('lets a user with access pull', async () => {
      const out = cleanup.add(await tempDir('out'), removeDir)

      await skopeoCopy(`docker://${agent.host}/team/secret:v1`, `dir:${out}`, { srcCreds: alice })

      const blobs = await dirBlobs(out)
      expect(new Set(blobs.keys())).toEqual(secret.blobDigests)
      for (const blob of blobs.values()) expect(blob.computed).toBe(blob.named)
    })

    it("keeps a repository's manifest and cached blobs from a user without access to it", async () => {
      // Fill the agent's cache as alice first: the cache must not bypass the origin's say.
      const aliceToken = await tokens.fetchToken(['repository:team/secret:pull'], alice)
      for (const digest of secret.blobDigests) {
        const res = await fetchBlob(agent.url, 'team/secret', digest, { authorization: `Bearer ${aliceToken}` })
        expect(res.status).toBe(200)
        expect(res.digest).toBe(digest)
      }
      const token = await tokens.fetchToken(['repository:team/secret:pull'], bob)
      const authorization = `Bearer ${token}`

      expect([401, 403]).toContain((await fetchManifest(agent.url, 'team/secret', 'v1', { authorization })).status)
      for (const digest of secret.blobDigests) {
        const res = await fetchBlob(agent.url, 'team/secret', digest, { authorization })
        expect([401, 403]).toContain(res.status)
        expect(res.digest).not.toBe(digest)
      }
      const out = cleanup.add(await tempDir('out'), removeDir)
      await expect(
        skopeoCopy(`docker://${agent.host}/team/secret:v1`, `dir:${out}`, { srcCreds: bob }),
      ).rejects.toThrow(/unauthorized|denied|401|403/i)
    })

    it('lets containerd pull with its own credentials (OAuth2 password grant) through a hosts.toml mirror', async () => {
      const containerd = cleanup.add(await startContainerd(), (c) => c.stop())
      const hostsDir = cleanup.add(await tempDir('hosts'), removeDir)
      // A closed port as `server`: only the mirror can make this pull work.
      await writeHostsToml(hostsDir, origin.host, {
        server: `http://127.0.0.1:${await freePort()}`,
        mirrors: [agent.url],
      })
      const seen = tokens.requests.length

      await containerd.pull(`${origin.host}/team/secret:v1`, { hostsDir, user: `${alice.username}:${alice.password}` })

      expect(await containerd.contentDigests()).toEqual(new Set([secret.image.root.digest, ...secret.blobDigests]))
      const asked = tokens.requests.slice(seen)
      expect(asked.some((r) => r.method === 'POST' && r.grantType === 'password' && r.username === 'alice')).toBe(true)
    })

    it('lets the same user pull a repository granted to it', async () => {
      const out = cleanup.add(await tempDir('out'), removeDir)

      await skopeoCopy(`docker://${agent.host}/team/shared:v1`, `dir:${out}`, { srcCreds: bob })

      expect(new Set((await dirBlobs(out)).keys())).toEqual(shared.blobDigests)
    })
  })
})
