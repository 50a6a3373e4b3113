import { describe, expect, it } from 'vitest'
import { CHUNK_PROTOCOL } from '../../../shared/swarm/protocol/index.ts'
import { rendezvousOrder } from '../../../shared/swarm/index.ts'
import {
  candidatesAmong,
  claimedAtStart,
  ELECTION_ALONE_WAIT_MS,
  ELECTION_SETTLE_MS,
  electionStep,
  followStallMs,
  mayStand,
  settleTimes,
} from '../../../agent/swarm/election.ts'

describe('mayStand', () => {
  it('takes a peer with an address that has not identified yet, or that speaks the chunk protocol', () => {
    expect(mayStand({ addresses: ['/ip4/10.0.0.1/tcp/4001'], protocols: [] })).toBe(true)
    expect(mayStand({ addresses: ['/ip4/10.0.0.1/tcp/4001'], protocols: ['/ipfs/id/1.0.0', CHUNK_PROTOCOL] })).toBe(
      true,
    )
  })

  it('leaves out a peer with no address, and one identified as not speaking the chunk protocol', () => {
    expect(mayStand({ addresses: [], protocols: [CHUNK_PROTOCOL] })).toBe(false)
    expect(mayStand({ addresses: ['/ip4/10.0.0.2/tcp/4001'], protocols: ['/ipfs/kad/1.0.0'] })).toBe(false)
  })
})

describe('candidatesAmong', () => {
  const electorate = { self: 'me', trusted: new Set(['seeder']), banned: (p: string) => p === 'liar' }

  it('keeps the other agents, in their order, once each', () => {
    expect(candidatesAmong(['b', 'a', 'b', 'c'], electorate)).toEqual(['b', 'a', 'c'])
  })

  it('leaves out this node, the trusted seeders and banned peers', () => {
    expect(candidatesAmong(['me', 'a', 'seeder', 'liar', 'b'], electorate)).toEqual(['a', 'b'])
  })
})

describe('claimedAtStart', () => {
  it('a young node claims before it pulls; one past the alone wait does not', () => {
    expect(claimedAtStart(0)).toBe(false)
    expect(claimedAtStart(ELECTION_ALONE_WAIT_MS)).toBe(false)
    expect(claimedAtStart(ELECTION_ALONE_WAIT_MS + 1)).toBe(true)
    expect(claimedAtStart(600, 500)).toBe(true)
  })
})

describe('electionStep', () => {
  const none = new Set<string>()

  it('ranked first, this node claims once, then pulls', () => {
    expect(electionStep(['me', 'a', 'b'], 'me', none, false)).toEqual({ kind: 'claim' })
    expect(electionStep(['me', 'a', 'b'], 'me', none, true)).toEqual({ kind: 'pull' })
  })

  it('another ranked first is asked, claimed or not', () => {
    expect(electionStep(['a', 'me', 'b'], 'me', none, false)).toEqual({ kind: 'ask', peer: 'a' })
    expect(electionStep(['a', 'me', 'b'], 'me', none, true)).toEqual({ kind: 'ask', peer: 'a' })
  })

  it('passes over candidates that are down, in rendezvous order, down to this node', () => {
    const order = ['a', 'b', 'me', 'c']
    expect(electionStep(order, 'me', new Set(['a']), true)).toEqual({ kind: 'ask', peer: 'b' })
    expect(electionStep(order, 'me', new Set(['a', 'b']), true)).toEqual({ kind: 'pull' })
  })

  it('with every other candidate down, or none at all, this node pulls after its claim', () => {
    expect(electionStep(['a', 'b'], 'me', new Set(['a', 'b']), false)).toEqual({ kind: 'claim' })
    expect(electionStep(['a', 'b'], 'me', new Set(['a', 'b']), true)).toEqual({ kind: 'pull' })
    expect(electionStep(['me'], 'me', none, true)).toEqual({ kind: 'pull' })
  })

  it('every node that knows the same candidates elects the same one', () => {
    const nodes = ['n1', 'n2', 'n3', 'n4', 'n5']
    const key = 'sha256:' + 'ab'.repeat(32)
    const asks = nodes.map((self) => {
      const order = rendezvousOrder(
        [self, ...candidatesAmong(nodes, { self, trusted: new Set(), banned: () => false })],
        key,
      )
      const step = electionStep(order, self, none, true)
      return step.kind === 'ask' ? step.peer : self
    })
    expect(new Set(asks).size).toBe(1)
  })
})

describe('followStallMs', () => {
  it('gives the k-th candidate to act k stall timeouts to take over, plus one of its own', () => {
    expect(followStallMs(0, 1000)).toBe(1000)
    expect(followStallMs(2, 1000)).toBe(3000)
  })
})

describe('settleTimes', () => {
  it('counts from the start time, with the defaults or the options given', () => {
    expect(settleTimes(1000, {})).toEqual({
      settleMs: ELECTION_SETTLE_MS,
      settleUntil: 1000 + ELECTION_SETTLE_MS,
      aloneUntil: 1000 + ELECTION_ALONE_WAIT_MS,
    })
    expect(settleTimes(1000, { electionSettleMs: 10, electionAloneWaitMs: 50 })).toEqual({
      settleMs: 10,
      settleUntil: 1010,
      aloneUntil: 1050,
    })
  })
})
