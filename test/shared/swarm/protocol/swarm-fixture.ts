/**
 * Three real libp2p nodes on 127.0.0.1 (TCP, TLS, yamux): a seeder serving a whole blob with attestations, an
 * agent serving two of its chunks, and a client-only agent. Plus one spare node for servers a single test
 * configures differently (each is stopped after its test).
 */
import type { PrivateKey } from '@libp2p/interface'
import { afterAll, afterEach, beforeAll } from 'vitest'
import type { P2PNode } from '../../../../shared/p2p/index.ts'
import { ChunkClient, ChunkServer, type ChunkServerInit } from '../../../../shared/swarm/protocol/index.ts'
import {
  addrOf,
  captureLog,
  KIB,
  type LogLine,
  MemorySource,
  makeBlob,
  Nodes,
  seederKey,
  type TestBlob,
} from './helpers.ts'

export interface Swarm {
  key: PrivateKey
  seeder: P2PNode
  agentA: P2PNode
  /** Client only; connected to every other node. */
  agentB: P2PNode
  /** 4 chunks of 256 KiB and a short one. */
  blob: TestBlob
  /** Another small blob. */
  other: TestBlob
  readonly seederSource: MemorySource
  readonly agentSource: MemorySource
  /** The seeder server's log (debug level). */
  logLines: LogLine[]
  /** agentB's client, 5 s timeout. */
  client: ChunkClient
  /** Cleanups run after the current test. */
  readonly scoped: (() => Promise<void>)[]
  /** A server on the spare node, stopped after the test. */
  freshServer(init: ChunkServerInit): Promise<{ node: P2PNode; server: ChunkServer }>
  spareNode(): Promise<P2PNode>
}

/** Registers the hooks and returns the swarm, filled in by beforeAll. */
export function useSwarm(): Swarm {
  const nodes = new Nodes()
  let spare: P2PNode | undefined
  const startServer = async (node: P2PNode, init: ChunkServerInit, scope?: 'test'): Promise<ChunkServer> => {
    const server = new ChunkServer({ registrar: node }, init)
    await server.start()
    if (scope === 'test') swarm.scoped.push(() => server.stop())
    else nodes.defer(() => server.stop())
    return server
  }
  const swarm = {
    seederSource: new MemorySource(),
    agentSource: new MemorySource(),
    scoped: [],
    async spareNode(): Promise<P2PNode> {
      if (spare === undefined) {
        spare = await nodes.start()
        await swarm.agentB.dial(addrOf(spare))
      }
      return spare
    },
    async freshServer(init: ChunkServerInit): Promise<{ node: P2PNode; server: ChunkServer }> {
      const node = await swarm.spareNode()
      return { node, server: await startServer(node, init, 'test') }
    },
  } as unknown as Swarm

  beforeAll(async () => {
    swarm.key = await seederKey()
    ;[swarm.seeder, swarm.agentA, swarm.agentB] = await Promise.all([nodes.start(), nodes.start(), nodes.start()])
    swarm.blob = await makeBlob(4 * 256 * KIB + 1000, 256 * KIB, 1, swarm.key)
    swarm.other = await makeBlob(70 * KIB, 64 * KIB, 5, swarm.key)
    swarm.seederSource.add(swarm.blob, { attestations: true })
    swarm.agentSource.add(swarm.blob, { held: [1, 3], map: false })
    const captured = captureLog()
    swarm.logLines = captured.lines
    await startServer(swarm.seeder, { source: swarm.seederSource, log: captured.log })
    await startServer(swarm.agentA, { source: swarm.agentSource })
    swarm.client = new ChunkClient({ node: swarm.agentB, requestTimeoutMs: 5_000 })
    await swarm.agentB.dial(addrOf(swarm.seeder))
    await swarm.agentB.dial(addrOf(swarm.agentA))
  })
  afterEach(async () => {
    for (const c of swarm.scoped.splice(0).reverse()) await c()
  })
  afterAll(() => nodes.stopAll())
  return swarm
}
