import type { PeerId } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import type { Digest } from '../../shared/oci/index.ts'
import type { P2PNode } from '../../shared/p2p/index.ts'
import { MAX_ASKERS_PER_BLOB, MAX_HINTED_BLOBS, MAX_HINTED_PEERS, PeerHints } from '../../seeder/peer-hints.ts'

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}` as Digest
const peer = (id: string) => ({ toString: () => id }) as unknown as PeerId

/** A node whose peer store knows one TCP address per peer, answered at once. */
const node = {
  peerStore: {
    get: async (p: PeerId) => ({
      addresses: [
        { multiaddr: { toString: () => `/ip4/10.0.0.1/tcp/${4000 + (Number(p.toString().slice(5)) % 1000)}` } },
      ],
    }),
  },
} as unknown as P2PNode

const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('PeerHints bounds', () => {
  it('keeps at most its caps after 10,000 distinct agents asking', async () => {
    let now = 1_000_000
    const hints = new PeerHints(node, () => now)
    for (let i = 0; i < 10_000; i++, now++) hints.note(digest(0), peer(`peer-${i}`))
    await settle()
    expect(hints.size.askers).toBe(MAX_ASKERS_PER_BLOB)
    // The newest askers are the hints given.
    expect(hints.peersFor(digest(0), undefined)[0]).toMatch(/\/p2p\/peer-9999$/)
    for (let i = 0; i < 30_000; i++) hints.note(digest(i), peer(`peer-${i}`))
    await settle()
    expect(hints.size.blobs).toBe(MAX_HINTED_BLOBS)
    expect(hints.size.peers).toBe(MAX_HINTED_PEERS)
    now += 60_001
    expect(hints.peersFor(digest(29_999), undefined)).toEqual([])
  })
})

describe('PeerHints and edge sites', () => {
  it('names the asker’s own site’s askers first, then the others, most recent first in each', async () => {
    let now = 1_000_000
    const hints = new PeerHints(node, () => now)
    for (let i = 0; i < 40; i++, now++) hints.note(digest(1), peer(`peer-${i}`), i % 4 === 0 ? 'store-1' : 'store-2')
    hints.note(digest(1), peer('peer-99'))
    await settle()
    const got = hints.peersFor(digest(1), 'peer-0', 'store-1').map((a) => a.split('/p2p/')[1])
    expect(got.slice(0, 9)).toEqual([
      'peer-36',
      'peer-32',
      'peer-28',
      'peer-24',
      'peer-20',
      'peer-16',
      'peer-12',
      'peer-8',
      'peer-4',
    ])
    expect(got[9]).toBe('peer-99')
    // Without a site, as before: most recent first.
    expect(hints.peersFor(digest(1), undefined)[0]).toMatch(/\/p2p\/peer-99$/)
  })
})
