/**
 * Rolling upgrades: a DaemonSet replaces nodes one by one, so for a while nodes of the previous main
 * (test/compat/previous-main) and of this tree share one swarm. Each test runs a real demo origin and real
 * `shoal` processes of both trees (harness/previous-main.ts): a seeder of one release and an agent of each. Each
 * agent takes a different layer alone, then both pull the whole image at once, and the two releases must still
 * share: every digest verified, the origin sending each blob once, chunk bytes moving between the releases in both
 * directions over the bulk path, the manifest body over `/shoal/manifests/1.0.0`, provider lookups over
 * `/shoal/kad/1.0.0`. A wire change that drops the other release (a new protocol id with no fallback, a message an
 * old node rejects) fails here, with a message naming the node or the protocol that did not share.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { compatSuite } from '../../harness/compat-world.ts'
import { currentTree, type ShoalTree } from '../../harness/previous-main.ts'
import { probeProviders } from '../../harness/dht-probe.ts'
import type { ShoalNode } from '../../harness/shoal-node.ts'
import { pullImage } from '../../shared/sample/index.ts'

/** 32 chunks to a 2 MiB layer: a request wave to the seeder covers part of a layer, not all of it. */
const CHUNK = '64KiB'
/**
 * The seeder's upload cap: a layer takes it about a quarter of a second, time for an agent to learn that the other
 * agent holds the layer before it has asked the seeder for every chunk (agents ask a seeder only for chunks no peer
 * they know of holds; on a loaded machine that discovery can lag a whole layer at loopback speed).
 */
const SEEDER_UPLOAD_RATE = '8MiB'

const suite = compatSuite()

/** One image, one demo origin, a seeder of `seederTree` and one agent of each tree, all on 127.0.0.1. */
async function mixedSwarm(seederTree: ShoalTree) {
  const { dir, image, origin, start: node } = await suite.world({ seed: 'compat', layerBytes: 2 * 1024 * 1024 })
  const seeder = await node(seederTree, 'seeder', [
    ...['--origin', origin.url, '--data', join(dir, 'seeder'), '--chunk-size', CHUNK],
    ...['--upload-rate', SEEDER_UPLOAD_RATE],
    ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--api-listen', '127.0.0.1:0'],
  ])
  const agent = (tree: ShoalTree) =>
    node(tree, 'agent', [
      ...['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', join(dir, `agent-${tree.label}`)],
      ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--seeder', seeder.addr, '--chunk-size', CHUNK],
      // Generous: this asserts where bytes come from, not how fast a loaded machine is.
      ...['--stall-timeout', '60s'],
    ])
  const agents = await Promise.all([agent(suite.previous()), agent(currentTree)])
  return { image, origin, seeder, agents }
}

/** GETs one blob of demo/app through an agent and checks its digest. */
async function getBlob(agent: ShoalNode, digest: string): Promise<void> {
  const res = await request(`${agent.url}/v2/demo/app/blobs/${digest}`)
  expect(res.statusCode, `${agent.daemon.name}: GET ${digest}`).toBe(200)
  const hash = createHash('sha256')
  for await (const part of res.body) hash.update(part as Buffer)
  expect(`sha256:${hash.digest('hex')}`, `${agent.daemon.name}: digest of ${digest}`).toBe(digest)
}

/** Pulls the image through every agent at once and checks what went where. */
async function pullAndCheck(swarm: Awaited<ReturnType<typeof mixedSwarm>>): Promise<void> {
  const { image, origin, seeder, agents } = swarm
  const imageBytes = image.blobs.reduce((n, b) => n + b.size, 0)
  // First each agent takes a different layer on its own, so each holds one the other lacks: who pulled first in a
  // cold race must not decide whether bytes cross between the releases both ways (agents ask a seeder only for
  // chunks no peer holds). Then both pull the whole image at once: those two layers from each other, the rest cold.
  const [first, second] = [...image.blobs].sort((a, b) => b.size - a.size)
  await Promise.all([getBlob(agents[0]!, first!.digest), getBlob(agents[1]!, second!.digest)])
  // pullImage checks every manifest and blob digest itself.
  const pulls = await Promise.all(agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
  for (const p of pulls) expect(p.blobBytes).toBe(imageBytes)

  for (const [i, a] of agents.entries()) {
    const other = agents[1 - i]!
    const name = `${a.tree.label} agent`
    const s = await a.status()
    // Every byte from the swarm: the seeder and the one other agent, which is of the other release.
    expect(s.bytes['origin'] ?? 0, `${name}: bytes from the origin`).toBe(0)
    expect((s.bytes['seeder'] ?? 0) + (s.bytes['peer'] ?? 0), `${name}: bytes from the swarm`).toBe(imageBytes)
    expect(s.bytes['seeder'] ?? 0, `${name}: bytes from the ${seeder.tree.label} seeder`).toBeGreaterThan(0)
    // Typically the layer the other agent pulled first (a third of the image) and part of the rest; how much
    // depends on how soon each learns what the other holds, so the test asks only that bytes cross both ways.
    expect(s.bytes['peer'] ?? 0, `${name}: bytes from the ${other.tree.label} agent`).toBeGreaterThan(0)
    expect(s.served['peer'] ?? 0, `${name}: bytes to the ${other.tree.label} agent`).toBeGreaterThan(0)
    // Chunk bytes over the bulk (HTTPS) path, none fallen back to libp2p streams.
    expect(s.chunks, `${name}: chunk transfers`).toMatchObject({ fallbacks: 0 })
    expect(s.chunks?.bulk ?? 0, `${name}: chunks over the bulk path`).toBeGreaterThan(0)
  }
  // Counted at the origin: each blob left it once (to the seeder), and the manifest body once; each agent still
  // resolved the tag there.
  for (const b of image.blobs)
    expect(origin.stats.perBlob.get(b.digest)?.requests ?? 0, `origin GETs of ${b.digest}`).toBe(1)
  expect(origin.stats.blobBytesServed, 'blob bytes the origin sent').toBe(imageBytes)
  const manifestRequests = origin.stats.manifestRequests.map((r) => `${r.method} ${r.reference}`)
  expect(manifestRequests.sort(), 'manifest requests at the origin').toEqual([
    `GET ${image.root.digest}`,
    'HEAD v1',
    'HEAD v1',
  ])

  for (const n of [seeder, ...agents]) {
    expect(await n.metric('shoal_digest_failures_total'), `${n.daemon.name}: digest failures`).toBe(0)
    // A chunk one release sends and the other cannot read or prove is a ban ('unproven', a chunk that came before
    // its proof, is a race either release may lose, and only costs a retry).
    for (const reason of ['forged', 'hash', 'malformed'])
      expect(
        await n.metric('shoal_chunks_rejected_total', { reason }),
        `${n.daemon.name}: chunks rejected (${reason})`,
      ).toBe(0)
  }
  expect((await seeder.status()).served['peer'] ?? 0, `${seeder.daemon.name}: bytes to agents`).toBeGreaterThan(0)

  // `/shoal/kad/1.0.0`: a DHT client of the other release than the seeder's, starting from the seeder alone,
  // finds both agents as providers of a layer. The bytes above do not show this: the seeder's hints introduce
  // the agents to each other whether or not their DHTs can talk.
  const probeTree = seeder.tree.label === 'new' ? suite.previous() : currentTree
  const layer = [...image.blobs].sort((a, b) => b.size - a.size)[0]!
  const want = agents.map((a) => a.peerId)
  const probe = await probeProviders(probeTree, { via: seeder.addr, digest: layer.digest, want })
  expect(probe.found, `providers a DHT lookup of the ${probeTree.label} tree found (${probe.lastError})`).toEqual(
    expect.arrayContaining(want),
  )
}

describe('a swarm of the previous main and this tree', () => {
  it('seeder of this tree, an agent of each: every digest verified, each blob from the origin once, shared both ways', async () => {
    await pullAndCheck(await mixedSwarm(currentTree))
  })

  it('seeder of the previous main, an agent of each: the same', async () => {
    await pullAndCheck(await mixedSwarm(suite.previous()))
  })
})
