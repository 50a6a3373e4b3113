import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { agentSiteOf } from '../../seeder/agent-sites.ts'
import { InvalidPreheatRequestError, siteScope } from '../../seeder/preheat.ts'
import { agentPrefetcher } from '../../seeder/prefetch.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { type SeederRig, startSeederRig, waitJob } from './seeder-harness.ts'

const D1 = `sha256:${'1'.repeat(64)}` as Digest
const D2 = `sha256:${'2'.repeat(64)}` as Digest

function peer(id: string): PeerId {
  return { toString: () => id } as unknown as PeerId
}

/** Agents by site; `refuse` ones say no (busy, or --preheat-ttl 0 for a hold). Records each ask. */
function swarm(bySite: Record<string, string[]>, refuse: string[] = []) {
  const peers = Object.values(bySite).flat().map(peer)
  const siteOfId = new Map(Object.entries(bySite).flatMap(([s, ids]) => ids.map((id) => [id, s] as const)))
  const asks: { peer: string; digest: Digest; hold: boolean }[] = []
  const client = {
    async prefetch(p: PeerId, digest: Digest, _r: string, _n: string, opts: { hold?: boolean } = {}) {
      asks.push({ peer: p.toString(), digest, hold: opts.hold === true })
      if (refuse.includes(p.toString())) throw new Error('refused')
    },
    async getHave() {
      return { complete: true, bitfield: { count: 1 } }
    },
  }
  const prefetch = agentPrefetcher({
    client: client as never,
    candidates: () => peers,
    log: { debug: () => {} },
    random: () => 0.5,
    siteOf: async (p) => {
      const s = siteOfId.get(p.toString())
      return s === '' ? undefined : s
    },
  })
  return { prefetch, asks }
}

const req = (agents: number, sites: Record<string, number>) => ({
  registry: 'r.io',
  name: 'a',
  blobs: [
    { digest: D1, size: 1 },
    { digest: D2, size: 1 },
  ],
  agents,
  sites,
})

describe('copies per site: which agents a preheat asks', () => {
  it('asks that many agents of each site to hold every blob, and none of other sites', async () => {
    const { prefetch, asks } = swarm({ 'store-17': ['a1', 'a2', 'a3'], 'store-18': ['b1', 'b2'], '': ['x1'] })
    const r = await prefetch(req(0, { 'store-17': 2, 'store-18': 1 }), () => {}, new AbortController().signal)
    const askedPeers = [...new Set(asks.map((a) => a.peer))]
    expect(askedPeers.filter((p) => p.startsWith('a'))).toHaveLength(2)
    expect(askedPeers.filter((p) => p.startsWith('b'))).toHaveLength(1)
    expect(askedPeers).not.toContain('x1')
    expect(asks.every((a) => a.hold)).toBe(true)
    expect(asks.filter((a) => a.peer === askedPeers[0]).map((a) => a.digest)).toEqual([D1, D2])
    expect(r.sites).toEqual({
      'store-17': { wanted: 2, accepted: 2, complete: 2 },
      'store-18': { wanted: 1, accepted: 1, complete: 1 },
    })
    expect(r).toMatchObject({ accepted: 3, complete: 3, errors: [] })
  })

  it('replaces an agent that refuses with another of the same site, and says when a site runs short', async () => {
    const { prefetch, asks } = swarm({ s: ['s1', 's2', 's3'], t: ['t1'] }, ['s1', 's2'])
    const r = await prefetch(req(0, { s: 1, t: 2 }), () => {}, new AbortController().signal)
    expect(new Set(asks.filter((a) => a.peer.startsWith('s')).map((a) => a.peer))).toEqual(new Set(['s1', 's2', 's3']))
    expect(r.sites).toEqual({ s: { wanted: 1, accepted: 1, complete: 1 }, t: { wanted: 2, accepted: 1, complete: 1 } })
    expect(r.errors.filter((e) => e.startsWith('site '))).toEqual([
      'site t: 1 of 2 copies (connected agents of the site: 1)',
    ])
  })

  it('counts site copies toward `agents`, and asks the rest anywhere without a hold', async () => {
    const { prefetch, asks } = swarm({ s: ['s1', 's2'], '': ['x1', 'x2', 'x3'] })
    const r = await prefetch(req(3, { s: 1 }), () => {}, new AbortController().signal)
    const held = new Set(asks.filter((a) => a.hold).map((a) => a.peer))
    const plain = new Set(asks.filter((a) => !a.hold).map((a) => a.peer))
    expect(held.size).toBe(1)
    expect(plain.size).toBe(2)
    for (const p of plain) expect(held.has(p)).toBe(false)
    expect(r).toMatchObject({ accepted: 3, complete: 3 })
    expect(r.sites).toEqual({ s: { wanted: 1, accepted: 1, complete: 1 } })
  })

  it('without a site source, finds nobody for a site (and says so) but still serves `agents`', async () => {
    const client = {
      async prefetch() {},
      async getHave() {
        return { complete: true, bitfield: { count: 1 } }
      },
    }
    const prefetch = agentPrefetcher({
      client: client as never,
      candidates: () => [peer('a')],
      log: { debug: () => {} },
    })
    const r = await prefetch(req(1, { s: 1 }), () => {}, new AbortController().signal)
    expect(r.sites).toEqual({ s: { wanted: 1, accepted: 0, complete: 0 } })
    expect(r.errors).toEqual(['site s: 0 of 1 copies (connected agents of the site: 0)'])
    expect(r).toMatchObject({ accepted: 1, complete: 1 })
  })
})

describe('agentSiteOf (where the seeder learns an agent site)', () => {
  it('reads the site from the user agent identify recorded, and knows none without it', async () => {
    const id = peerIdFromString('12D3KooWRpNUDNNGPPgqau8RunZ64jENKJ8QtMQ5bE7UjHa4Aq3x')
    const stored = new Map([['AgentVersion', new TextEncoder().encode('shoal site/store-17')]])
    const siteOf = agentSiteOf({
      peerStore: {
        get: async (p: PeerId) => {
          if (p.equals(id)) return { metadata: stored }
          throw new Error('not found')
        },
      },
    } as never)
    expect(await siteOf(id)).toBe('store-17')
    stored.set('AgentVersion', new TextEncoder().encode('libp2p/3.3.11 site/store-17'))
    expect(await siteOf(id)).toBeUndefined()
    stored.clear()
    expect(await siteOf(id)).toBeUndefined()
    expect(await siteOf(peerIdFromString('12D3KooWCCG2QJeM7KmY1K4NvziMcVa6CewMjs3acg5voK8ieQ5h'))).toBeUndefined()
  })
})

describe('siteScope', () => {
  it('drops zero counts and orders sites, so equal asks merge', () => {
    expect(siteScope(undefined)).toEqual({})
    expect(Object.keys(siteScope({ b: 1, a: 2, c: 0 }))).toEqual(['a', 'b'])
  })

  it('refuses what the API schema refuses, for callers that skip it', () => {
    const bads: Record<string, number>[] = [{ 'bad site': 1 }, { s: -1 }, { s: 1.5 }, { s: 1001 }]
    for (const bad of bads) {
      expect(() => siteScope(bad), JSON.stringify(bad)).toThrow(InvalidPreheatRequestError)
    }
  })
})

describe('a preheat with copies per site', () => {
  let rig: SeederRig | undefined
  afterEach(async () => {
    await rig?.stop()
    rig = undefined
  })

  it('keeps the scope in the job, merges equal asks, and reports each site (here: no agent of it connected)', async () => {
    rig = await startSeederRig()
    const { preheater } = rig.seeder
    const first = preheater.submit('demo/multi:v1', ['linux/amd64'], { scope: { sites: { 'store-17': 2, x: 0 } } })
    const again = preheater.submit('demo/multi:v1', ['linux/amd64'], { scope: { sites: { 'store-17': 2 } } })
    expect(again).toEqual({ id: first.id, merged: true })
    const other = preheater.submit('demo/multi:v1', ['linux/amd64'], { scope: { sites: { 'store-17': 1 } } })
    expect(other.merged).toBe(false)
    const job = await waitJob(rig, first.id)
    expect(job.state).toBe('done')
    expect(job.scope).toEqual({ agents: 0, sites: { 'store-17': 2 } })
    expect(job.agents?.sites).toEqual({ 'store-17': { wanted: 2, accepted: 0, complete: 0 } })
    expect(job.agents?.errors).toEqual(['site store-17: 0 of 2 copies (connected agents of the site: 0)'])
    expect(() => preheater.submit('demo/multi:v1', [], { scope: { sites: { 'no such/site': 1 } } })).toThrow(
      InvalidPreheatRequestError,
    )
  })
})
