/** ManifestFromPeers, the search before the origin, against a fake client: order, fallthrough, deadline. */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { type Digest, digestOf, OCI_MANIFEST } from '../../../../shared/oci/index.ts'
import { ManifestFromPeers } from '../../../../shared/swarm/manifests/index.ts'
import { InvalidMessageError, PeerTimeoutError, ProtocolError } from '../../../../shared/swarm/wire/index.ts'

const bytes = new TextEncoder().encode('{"schemaVersion":2}')
const digest = digestOf(bytes)
const ids = async (n: number): Promise<PeerId[]> =>
  Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))

type Answer = 'hit' | 'none' | 'wrong' | 'fail' | 'hang'

function fakeClient(answers: Map<string, Answer>, asked: string[]) {
  return {
    get: (peer: PeerId, _d: Digest, opts: { signal?: AbortSignal }) => {
      asked.push(peer.toString())
      switch (answers.get(peer.toString()) ?? 'none') {
        case 'hit':
          return Promise.resolve({ mediaType: OCI_MANIFEST, bytes })
        case 'none':
          return Promise.resolve(undefined)
        case 'wrong':
          return Promise.reject(new InvalidMessageError('hashes to something else'))
        case 'fail':
          return Promise.reject(new ProtocolError('protocol selection failed'))
        case 'hang':
          return new Promise<never>((_, reject) =>
            opts.signal?.addEventListener('abort', () => reject(new PeerTimeoutError('slow')), { once: true }),
          )
      }
    },
  }
}

describe('ManifestFromPeers', () => {
  it('asks the seeders first, in order, then connected peers, and stops at the first verified answer', async () => {
    const [s1, s2, p1] = await ids(3)
    const asked: string[] = []
    const answers = new Map<string, Answer>([
      [s1!.toString(), 'none'],
      [s2!.toString(), 'fail'],
      [p1!.toString(), 'hit'],
    ])
    const search = new ManifestFromPeers({
      client: fakeClient(answers, asked),
      seeders: () => [s1!, s2!],
      peers: () => [s2!, p1!],
    })
    const got = await search.get(digest)
    expect(got?.from).toBe(p1!.toString())
    expect(asked).toEqual([s1!.toString(), s2!.toString(), p1!.toString()])
  })

  it('a wrong body is counted and never returned; it moves on to the next peer', async () => {
    const [s1, p1, p2] = await ids(3)
    const asked: string[] = []
    const answers = new Map<string, Answer>([
      [s1!.toString(), 'wrong'],
      [p1!.toString(), 'wrong'],
      [p2!.toString(), 'wrong'],
    ])
    const search = new ManifestFromPeers({
      client: fakeClient(answers, asked),
      seeders: () => [s1!],
      peers: () => [p1!, p2!],
    })
    expect(await search.get(digest)).toBeUndefined()
    expect(search.counts).toEqual({ found: 0, wrong: 3 })
  })

  it('tells seeders only where the digest was resolved (a seeder may pull it; a peer has no business knowing)', async () => {
    const [s1, p1] = await ids(2)
    const told: (string | undefined)[] = []
    const search = new ManifestFromPeers({
      client: {
        get: (peer: PeerId, _d: Digest, opts: { where?: { registry: string; name: string } }) => {
          told.push(
            opts.where === undefined ? undefined : `${peer.toString()} ${opts.where.registry}/${opts.where.name}`,
          )
          return Promise.resolve(undefined)
        },
      },
      seeders: () => [s1!],
      peers: () => [p1!],
    })
    await search.get(digest, { where: { registry: 'origin.test', name: 'demo/app' } })
    expect(told).toEqual([`${s1!.toString()} origin.test/demo/app`, undefined])
  })

  it('asks at most maxPeers peers besides the seeders', async () => {
    const peers = await ids(10)
    const asked: string[] = []
    const search = new ManifestFromPeers({
      client: fakeClient(new Map(), asked),
      seeders: () => [],
      peers: () => peers,
      maxPeers: 3,
    })
    expect(await search.get(digest)).toBeUndefined()
    expect(asked).toHaveLength(3)
  })

  it('gives up on the whole search at its deadline, however many peers are left', async () => {
    const peers = await ids(5)
    const asked: string[] = []
    const answers = new Map<string, Answer>(peers.map((p) => [p.toString(), 'hang']))
    const search = new ManifestFromPeers({
      client: fakeClient(answers, asked),
      seeders: () => peers,
      peers: () => [],
      deadlineMs: 150,
    })
    const start = performance.now()
    expect(await search.get(digest)).toBeUndefined()
    expect(performance.now() - start).toBeLessThan(1_000)
    expect(asked).toHaveLength(1)
  })
})
