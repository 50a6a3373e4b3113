/**
 * Rolling upgrades keep the node's data dir: the agent of this tree starts on what the previous main
 * (test/compat/previous-main) wrote, and so does the seeder, and no cached blob may be lost (a lost blob is a
 * new origin pull, for every node of the fleet at once). Real processes of both trees, a real demo origin that
 * counts what it sends; the store is checked with this tree's own fsck afterwards.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { compatSuite } from '../../harness/compat-world.ts'
import { currentTree } from '../../harness/previous-main.ts'
import { runShoal } from '../../harness/shoal-node.ts'
import { pullImage } from '../../shared/sample/index.ts'
import { checkStore } from '../../shared/store/index.ts'

const CHUNK = '256KiB'

const suite = compatSuite()

async function setup() {
  const { dir, image, origin, start } = await suite.world({ seed: 'compat-data', layerBytes: 1024 * 1024 })
  /** What the origin has sent so far: blob GETs and their bytes, manifest GETs (bodies). */
  const sent = () => ({
    blobRequests: origin.stats.blobRequests,
    blobBytes: origin.stats.blobBytesServed,
    manifestGets: origin.stats.manifestRequests.filter((r) => r.method === 'GET').length,
  })
  const imageBytes = image.blobs.reduce((n, b) => n + b.size, 0)
  return { dir, image, imageBytes, origin, start, sent }
}

/** This tree's fsck of a stopped node's data dir: no problem, every blob of the image there and hashing right. */
async function expectWholeStore(data: string, digests: readonly string[]): Promise<void> {
  const check = await checkStore(data, { mode: 'reconciled', hash: true })
  expect(check.problems, `problems in ${data}`).toEqual([])
  expect([...check.blobs.keys()].sort()).toEqual([...digests].sort())
}

describe('a data dir written by the previous main, opened by this tree', () => {
  it("an agent's: every blob served from the cache, no blob or manifest body from the origin, same peer id", async () => {
    const { dir, image, imageBytes, origin, start, sent } = await setup()
    const data = join(dir, 'agent')
    const args = [
      ...['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', data, '--chunk-size', CHUNK],
      // The swarm on, so the data dir holds what a swarm agent keeps (its identity among it).
      ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0'],
    ]
    const old = await start(suite.previous(), 'agent', args)
    expect((await pullImage(old.url, 'demo/app', 'v1')).blobBytes).toBe(imageBytes)
    expect(origin.stats.blobBytesServed).toBe(imageBytes)
    expect(await old.stop(), 'previous agent: exit code').toBe(0)
    const before = sent()

    const agent = await start(currentTree, 'agent', args)
    expect(agent.peerId, 'peer id kept across the upgrade').toBe(old.peerId)
    // pullImage checks every manifest and blob digest itself.
    expect((await pullImage(agent.url, 'demo/app', 'v1')).blobBytes).toBe(imageBytes)
    // The tag is still resolved at the origin (a HEAD); nothing else comes from it: no blob, no manifest body
    // (this agent has no seeder and no peer, so whatever the origin did not send came from the data dir).
    expect(sent(), 'what the origin sent to the upgraded agent').toEqual(before)
    const status = await agent.status()
    expect(status.bytes, 'bytes the upgraded agent received (origin, seeder, peers)').toEqual({})
    expect(await agent.stop()).toBe(0)
    await expectWholeStore(
      data,
      image.blobs.map((b) => b.digest),
    )
  })

  it("a seeder's: filled by a preheat under the previous main, it serves every blob with no origin pull, same peer id", async () => {
    const { dir, image, imageBytes, origin, start, sent } = await setup()
    const data = join(dir, 'seeder')
    const args = [
      ...['--origin', origin.url, '--data', data, '--chunk-size', CHUNK],
      ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--api-listen', '127.0.0.1:0'],
    ]
    const old = await start(suite.previous(), 'seeder', args)
    // The preheat API across releases: this tree's `shoal preheat` drives the previous main's seeder ...
    const first = await runShoal(currentTree, ['preheat', '--seeder', old.url, 'demo/app:v1'])
    expect(first.code, `new shoal preheat against the previous seeder: ${first.output}`).toBe(0)
    expect(origin.stats.blobBytesServed).toBe(imageBytes)
    expect(await old.stop(), 'previous seeder: exit code').toBe(0)
    const before = sent()

    const seeder = await start(currentTree, 'seeder', args)
    expect(seeder.peerId, "peer id kept across the upgrade (agents' --seeder names it)").toBe(old.peerId)
    // ... and the previous main's drives this tree's, which holds the image already.
    const again = await runShoal(suite.previous(), ['preheat', '--seeder', seeder.url, 'demo/app:v1'])
    expect(again.code, `previous shoal preheat against the new seeder: ${again.output}`).toBe(0)
    const agent = await start(currentTree, 'agent', [
      ...['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', join(dir, 'agent'), '--chunk-size', CHUNK],
      ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--seeder', seeder.addr],
    ])
    expect((await pullImage(agent.url, 'demo/app', 'v1')).blobBytes).toBe(imageBytes)
    // A preheat resolves the tag with a GET each time; blobs are what the data dir must keep.
    const after = sent()
    expect({ ...after, manifestGets: 0 }, 'what the origin sent after the upgrade').toEqual({
      ...before,
      manifestGets: 0,
    })
    expect((await agent.status()).bytes, 'where the agent got its bytes').toEqual({ seeder: imageBytes })
    expect((await seeder.status()).bytes['origin'] ?? 0, 'bytes the upgraded seeder pulled').toBe(0)
    expect(await seeder.stop()).toBe(0)
    await expectWholeStore(
      data,
      image.blobs.map((b) => b.digest),
    )
  })
})
