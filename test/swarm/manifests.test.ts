/**
 * Manifest sharing in a real swarm (demo origin over HTTP, seeder and agents on real libp2p): the origin resolves
 * the tag and authorizes with a HEAD, the body by digest comes from a seeder or a peer, verified. Counted at the
 * origin (DemoOriginStats.manifestRequests), not from Shoal's own metrics.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type Fleet, type PeerFleet, startFleet, startPeerFleet } from '../../harness/fleet.ts'
import type { RunningAgent } from '../../agent/main.ts'
import { createP2PNode, type P2PNode } from '../../shared/p2p/index.ts'
import { pullImage } from '../../shared/sample/pull.ts'
import { decodeManifestRequest, encodeManifestResponse, MANIFEST_PROTOCOL } from '../../shared/swarm/manifests/index.ts'
import { FrameStream } from '../../shared/swarm/protocol/framing.ts'
import { withPeerId } from '../../shared/swarm/index.ts'
import { OCI_MANIFEST } from '../../shared/oci/index.ts'

let fleet: Fleet | PeerFleet | undefined
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
  await fleet?.stop()
  fleet = undefined
})

const small = { layers: 2, layerBytes: 256 * 1024 }

/** Until the agent's libp2p node has at least `n` peers (its search asks only connected ones besides seeders). */
async function connected(a: RunningAgent, n: number): Promise<void> {
  await vi.waitFor(() => expect(a.metrics.sources.peers?.() ?? 0).toBeGreaterThanOrEqual(n), { timeout: 15_000 })
}

/** Origin manifest requests from `from` on, as `METHOD reference` lines. */
function manifestRequests(f: Fleet | PeerFleet, from: number): string[] {
  return f.origin.stats.manifestRequests.slice(from).map((r) => `${r.method} ${r.reference}`)
}

/** A libp2p node outside Shoal's agents (no swarm key: the peer fleets of these tests have none). */
async function extraNode(): Promise<P2PNode & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-manifest-peer-'))
  const node = await createP2PNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'] })
  cleanups.push(async () => {
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  })
  return Object.assign(node, { dir })
}

describe('manifest bodies from the swarm', () => {
  it('no seeder: a second agent takes the body from the first; the origin answers its HEAD and sends no body', async () => {
    fleet = await startPeerFleet({ agents: 1, swarmKey: false, ...small })
    const f = fleet
    const root = f.image.root
    await pullImage(f.agents[0]!.url, 'demo/app', 'v1')
    // Nobody held it yet: the first agent resolved the tag and then fetched the body by digest.
    expect(manifestRequests(f, 0)).toEqual(['HEAD v1', `GET ${root.digest}`])
    const before = f.origin.stats.manifestRequests.length
    // Bootstrapped from the first agent.
    const second = await f.startAgent(1)
    await connected(second, 1)
    const r = await pullImage(second.url, 'demo/app', 'v1')
    expect(r.manifests).toBe(1)
    expect(manifestRequests(f, before)).toEqual(['HEAD v1'])
    const bodyBytes = f.origin.stats.manifestRequests.slice(before).reduce((n, x) => n + x.bytes, 0)
    expect(bodyBytes).toBe(0)
  })

  it('cold, with a seeder: agents pulling at once each HEAD the origin, and the body leaves it once, to the seeder', async () => {
    fleet = await startFleet({ agents: 3, ...small })
    const f = fleet
    for (const a of f.agents) await connected(a, 1)
    await Promise.all(f.agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    const lines = manifestRequests(f, 0).sort()
    expect(lines).toEqual([`GET ${f.image.root.digest}`, 'HEAD v1', 'HEAD v1', 'HEAD v1'])
  })

  it('after a preheat the seeder holds the manifest: a fresh agent gets the body from it', async () => {
    const f = await startFleet({ agents: 0, ...small })
    fleet = f
    const { id } = f.seeder.preheater.submit('demo/app:v1')
    await vi.waitFor(() => expect(f.seeder.preheater.get(id)?.state).toBe('done'), { timeout: 60_000 })
    const before = f.origin.stats.manifestRequests.length
    const agent = await f.startAgent(0)
    await connected(agent, 1)
    await pullImage(agent.url, 'demo/app', 'v1')
    expect(manifestRequests(f, before)).toEqual(['HEAD v1'])
  })

  it('a peer answering wrong bytes and a peer of an earlier release (no protocol): the origin GET, the right manifest', async () => {
    fleet = await startPeerFleet({ agents: 0, swarmKey: false, ...small })
    const f = fleet
    const liar = await extraNode()
    let lies = 0
    await liar.handle(MANIFEST_PROTOCOL, async (stream) => {
      const frames = new FrameStream(stream, { maxBufferBytes: 64 * 1024 })
      decodeManifestRequest(await frames.read(4096))
      lies++
      const wrong = new TextEncoder().encode('{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST + '","layers":[]}')
      await frames.write([
        encodeManifestResponse({ t: 'manifest', mediaType: OCI_MANIFEST, length: wrong.length }),
        wrong,
      ])
      await stream.close()
    })
    // Speaks libp2p and the DHT like any node, but not /shoal/manifests/1.0.0.
    const old = await extraNode()
    const agent = await f.startAgent(0, [
      ...['--bootstrap', withPeerId(liar.getMultiaddrs()[0]!.toString(), liar.peerId.toString())],
      ...['--bootstrap', withPeerId(old.getMultiaddrs()[0]!.toString(), old.peerId.toString())],
    ])
    await connected(agent, 2)
    // pullImage checks the manifest against the Docker-Content-Digest the agent answers, and every blob.
    const r = await pullImage(agent.url, 'demo/app', 'v1')
    expect(r.manifests).toBe(1)
    expect(lies).toBe(1)
    expect(manifestRequests(f, 0)).toEqual(['HEAD v1', `GET ${f.image.root.digest}`])
  })
})
