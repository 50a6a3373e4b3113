import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { beforeAll, describe, expect, it } from 'vitest'
import type { ChunkGeometry } from '../../../shared/chunks/index.ts'
import { createLogger } from '../../../shared/log/index.ts'
import { type Digest, digestOf } from '../../../shared/oci/digest.ts'
import type { P2PNode } from '../../../shared/p2p/index.ts'
import type { ChunkClient } from '../../../shared/swarm/protocol/index.ts'
import { rendezvousOrder, type SeederRef, seedersInOrder } from '../../../shared/swarm/index.ts'
import { ColdDuty, type ColdInit, type FollowCold } from '../../../agent/swarm/cold.ts'
import type { ProviderLookups } from '../../../agent/swarm/lookups.ts'
import type { Announcer } from '../../../agent/swarm/provider.ts'

const digest: Digest = digestOf(new TextEncoder().encode('a cold blob'))
const want = { digest, registry: 'registry.test', name: 'library/app' }
const STALL_MS = 1000

/** Who answers `fetch` and how: a geometry, or a refusal (a RemoteError is not retried). */
type Answer = ChunkGeometry | 'refuse'
const refusal = (): Error => Object.assign(new Error('refused'), { name: 'RemoteError' })

/** A ColdDuty over fakes: no libp2p, a node with the given peers, a client answering per target. */
function duty(opts: {
  self: string
  peers?: readonly string[]
  seeders?: readonly string[]
  answers: Record<string, Answer>
  init?: Partial<ColdInit>
}) {
  const asked: string[] = []
  const announced: Digest[] = []
  const node = {
    peerId: { toString: () => opts.self },
    getPeers: () => (opts.peers ?? []).map((p) => ({ toString: () => p })),
    peerStore: { all: async () => [] },
    peerRouting: { getClosestPeers: async function* () {} },
    services: { bootstrap: { bootstrap: async () => {} } },
  } as unknown as P2PNode
  const client = {
    fetch: async (target: { toString(): string }): Promise<ChunkGeometry> => {
      const who = target.toString()
      asked.push(who)
      const a = opts.answers[who] ?? 'refuse'
      if (a === 'refuse') throw refusal()
      return a
    },
  } as unknown as ChunkClient
  const seeders: SeederRef[] = (opts.seeders ?? []).map((id) => ({ id, addr: { toString: () => id } as Multiaddr }))
  const cold = new ColdDuty(
    {
      node,
      client,
      seeders,
      announcer: { announce: (d: Digest) => announced.push(d) } as unknown as Announcer,
      lookups: { lookup: async () => {} } as unknown as ProviderLookups,
      log: createLogger({ level: 'silent' }),
      trusted: new Set(seeders.map((s) => s.id)),
      banned: () => false,
      interested: () => [],
      noteInterest: () => {},
      now: () => 1_000_000,
      // Long started: no settle wait, and no claim before it pulls.
      startedAt: 0,
    },
    { stallTimeoutMs: STALL_MS, electionClaimMs: 1, ...opts.init },
  )
  return { cold, asked, announced, seeders }
}

const geometry = (size: number): ChunkGeometry => ({ size, chunkSize: 4 }) as ChunkGeometry

/** A follower that reports each call and answers from `results` (true: committed, false: stalled). */
function follower(results: boolean[], seen: { geometry: ChunkGeometry; stallMs: number }[]): FollowCold {
  return async (g, stallMs) => {
    seen.push({ geometry: g, stallMs })
    return results.shift() ?? false
  }
}

describe('ColdDuty, seeders', () => {
  const ids = ['seeder-a', 'seeder-b', 'seeder-c']

  it('asks the seeders in rendezvous order; one that refuses passes the duty to the next', async () => {
    const order = seedersInOrder(
      ids.map((id) => ({ id, addr: {} as Multiaddr })),
      digest,
    ).map((s) => s.id)
    const { cold, asked } = duty({ self: 'me', seeders: ids, answers: { [order[1]!]: geometry(10) } })
    const seen: { geometry: ChunkGeometry; stallMs: number }[] = []
    await cold.fill(want, follower([true], seen), AbortSignal.timeout(5000))
    expect(asked).toEqual([order[0], order[1]])
    expect(seen).toEqual([{ geometry: geometry(10), stallMs: STALL_MS }])
  })

  it('a seeder that took the blob and stalled passes it to the next', async () => {
    const answers = Object.fromEntries(ids.map((id, i) => [id, geometry(10 + i)]))
    const order = rendezvousOrder(ids, digest)
    const { cold, asked } = duty({ self: 'me', seeders: ids, answers })
    const seen: { geometry: ChunkGeometry; stallMs: number }[] = []
    await cold.fill(want, follower([false, true], seen), AbortSignal.timeout(5000))
    expect(asked).toEqual(order.slice(0, 2))
    expect(seen.map((s) => s.geometry)).toEqual([answers[order[0]!], answers[order[1]!]])
  })

  it('without peer proofs, no seeder delivering is the end: the caller goes to the origin', async () => {
    const { cold } = duty({ self: 'me', seeders: ids, answers: {} })
    await expect(cold.fill(want, follower([], []), AbortSignal.timeout(5000))).rejects.toMatchObject({
      code: 'SWARM_UNAVAILABLE',
      message: `no seeder took ${digest}`,
    })
    const alone = duty({ self: 'me', answers: {} })
    await expect(alone.cold.fill(want, follower([], []), AbortSignal.timeout(5000))).rejects.toMatchObject({
      code: 'SWARM_UNAVAILABLE',
      message: 'no seeder configured',
    })
  })
})

describe('ColdDuty, election among agents', () => {
  let ids: string[]
  beforeAll(async () => {
    ids = await Promise.all(
      [0, 1, 2].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()),
    )
  })

  it('follows the agent ranked first; one that stalls passes the duty on, with one more stall timeout', async () => {
    const order = rendezvousOrder(ids, digest)
    // This node ranks last: the two above it act in turn.
    const self = order[2]!
    const answers = { [order[0]!]: geometry(10), [order[1]!]: geometry(10) }
    const { cold, asked } = duty({ self, peers: order.slice(0, 2), answers, init: { peerProofs: true } })
    const seen: { geometry: ChunkGeometry; stallMs: number }[] = []
    const electedWhileFollowing: boolean[] = []
    const follow: FollowCold = async (g, stallMs) => {
      electedWhileFollowing.push(cold.elected(digest))
      return follower([seen.length === 1], seen)(g, stallMs)
    }
    await cold.fill(want, follow, AbortSignal.timeout(5000))
    expect(asked).toEqual(order.slice(0, 2))
    expect(seen.map((s) => s.stallMs)).toEqual([STALL_MS, 2 * STALL_MS])
    expect(electedWhileFollowing).toEqual([true, true])
    expect(cold.elected(digest)).toBe(false)
  })

  it('ranked first, or every agent above it refusing, this node pulls for the swarm', async () => {
    const order = rendezvousOrder(ids, digest)
    const first = duty({ self: order[0]!, peers: order.slice(1), answers: {}, init: { peerProofs: true } })
    await expect(first.cold.fill(want, follower([], []), AbortSignal.timeout(5000))).rejects.toMatchObject({
      code: 'SWARM_ELECTED',
    })
    expect(first.asked).toEqual([])
    const last = duty({ self: order[2]!, peers: order.slice(0, 2), answers: {}, init: { peerProofs: true } })
    await expect(last.cold.fill(want, follower([], []), AbortSignal.timeout(5000))).rejects.toMatchObject({
      code: 'SWARM_ELECTED',
    })
    expect(last.asked).toEqual(order.slice(0, 2))
  })

  it('a young node ranked first claims (announces the blob and looks again) before it pulls', async () => {
    const order = rendezvousOrder(ids, digest)
    const young = duty({
      self: order[0]!,
      peers: order.slice(1),
      answers: {},
      init: { peerProofs: true, electionSettleMs: 0, electionAloneWaitMs: 2_000_000 },
    })
    await expect(young.cold.fill(want, follower([], []), AbortSignal.timeout(5000))).rejects.toMatchObject({
      code: 'SWARM_ELECTED',
    })
    expect(young.announced).toEqual([digest])
  })
})
