// The cold-blob duty: who pulls a blob no one holds from the origin for the swarm. The seeders in rendezvous
// order first; with none delivering and peer proofs on, the agents' election. The Swarm gives it a way to follow
// whoever took the blob (its download session); this module only decides whom to ask and when to move on.
import { setTimeout as sleep } from 'node:timers/promises'
import { peerIdFromString } from '@libp2p/peer-id'
import type { ChunkGeometry } from '../../shared/chunks/index.ts'
import type { Logger } from '../../shared/log/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import { blobCid, type P2PNode } from '../../shared/p2p/index.ts'
import type { ChunkClient } from '../../shared/swarm/protocol/index.ts'
import { rendezvousOrder, type SeederRef, seedersInOrder } from '../../shared/swarm/index.ts'
import {
  candidatesAmong,
  claimedAtStart,
  ELECTED_FETCH_TIMEOUT_MS,
  ELECTION_ALONE_RETRY_MS,
  ELECTION_CLAIM_MS,
  ELECTION_LOOKUP_MS,
  type ElectionInit,
  electionStep,
  followStallMs,
  mayStand,
  settleTimes,
} from './election.ts'
import { SwarmElectedError, SwarmUnavailableError } from './errors.ts'
import type { ProviderLookups } from './lookups.ts'
import type { Announcer } from './provider.ts'
import { retry } from './retry.ts'

/** What the swarm needs to know of a wanted blob (the client's request stays with the blob service). */
export interface SwarmWant {
  readonly digest: Digest
  /** The registry and repository the seeder pulls it from, when no one holds it yet. */
  readonly registry: string
  readonly name: string
}

/** How the duty follows whoever took the blob: true once the blob is committed, false when it stalled. */
export type FollowCold = (geometry: ChunkGeometry, stallTimeoutMs: number) => Promise<boolean>

export interface ColdInit extends ElectionInit {
  /**
   * Peer proofs (`--swarm-key` or `--trust-peer-maps`): when no seeder answers for a blob, the agents elect one of
   * themselves to pull it from the origin and accept the chunk proofs it signs. Off: no seeder, no swarm.
   */
  readonly peerProofs?: boolean
  /** No verified chunk for this long → the rest comes from the origin. */
  readonly stallTimeoutMs: number
}

export interface ColdComponents {
  readonly node: P2PNode
  readonly client: ChunkClient
  readonly seeders: readonly SeederRef[]
  readonly announcer: Announcer
  readonly lookups: ProviderLookups
  readonly log: Logger
  readonly trusted: ReadonlySet<string>
  readonly banned: (peer: string) => boolean
  /** Peers that asked this node about the blob, and how to add one. */
  readonly interested: (digest: Digest) => Iterable<string>
  readonly noteInterest: (digest: Digest, peer: string) => void
  readonly now: () => number
  /** When this node started: the election waits for a young node to meet its peers. */
  readonly startedAt: number
}

export class ColdDuty {
  readonly #c: ColdComponents
  readonly #init: ColdInit
  /** Blobs being filled by the election among agents: peers' proofs count for them. */
  readonly #elected = new Set<Digest>()

  constructor(components: ColdComponents, init: ColdInit) {
    this.#c = components
    this.#init = init
  }

  /** Whether the agents' election is filling `digest` now (so peers' proofs count for it). */
  elected(digest: Digest): boolean {
    return this.#elected.has(digest)
  }

  /**
   * Returns once `follow` committed the blob; throws SwarmElectedError when this node is to pull it from the
   * origin itself, SwarmUnavailableError when no one took it.
   */
  async fill(want: SwarmWant, follow: FollowCold, signal: AbortSignal): Promise<void> {
    const { digest } = want
    try {
      if (await this.#fromSeeders(want, follow, signal)) return
      if (this.#init.peerProofs !== true) {
        throw new SwarmUnavailableError(
          this.#c.seeders.length === 0 ? 'no seeder configured' : `no seeder took ${digest}`,
        )
      }
      await this.#fromElected(want, follow, signal)
    } finally {
      this.#elected.delete(digest)
    }
  }

  /**
   * The seeders in rendezvous order are asked to pull the blob, the owner first. One that is down or refuses, or
   * that took it and then shows no progress for a stall timeout (it died mid-pull), passes the duty to the next:
   * the origin sends the blob once more at most, not once per agent. False when none delivered.
   */
  async #fromSeeders(want: SwarmWant, follow: FollowCold, signal: AbortSignal): Promise<boolean> {
    const { digest } = want
    for (const seeder of seedersInOrder(this.#c.seeders, digest)) {
      let geometry: ChunkGeometry
      try {
        geometry = await retry(
          () => this.#c.client.fetch(seeder.addr, digest, want.registry, want.name, { signal }),
          signal,
        )
      } catch (err) {
        signal.throwIfAborted()
        this.#c.log.warn({ seeder: seeder.id, digest, err: (err as Error).message }, 'seeder did not take blob')
        continue
      }
      if (await follow(geometry, this.#init.stallTimeoutMs)) return true
      this.#c.log.warn({ seeder: seeder.id, digest }, 'seeder stalled, asking the next one')
    }
    return false
  }

  /**
   * The election among agents (peer proofs on, no seeder delivered). The candidates are this node, the peers it is
   * connected to, the DHT providers of the blob and the peers that asked it about the blob (seeders and banned
   * peers excluded); every node ranks them by the one rendezvous rule. The one ranked first pulls the blob from the
   * origin (SwarmElectedError: the caller's origin pull, which signs each chunk as it lands); the others ask it to
   * (`fetch`) and download from it and from each other meanwhile. A candidate that refuses, cannot be reached or
   * shows no progress for a stall timeout is passed over for the next one (`turn`).
   */
  async #fromElected(want: SwarmWant, follow: FollowCold, signal: AbortSignal): Promise<void> {
    const { node, client, log } = this.#c
    const digest = want.digest
    const self = node.peerId.toString()
    await this.#settle(signal)
    this.#elected.add(digest)
    const down = new Set<string>()
    let claimed = claimedAtStart(this.#c.now() - this.#c.startedAt, this.#init.electionAloneWaitMs)
    for (;;) {
      const order = rendezvousOrder([self, ...(await this.#candidates(digest, signal))], digest)
      const step = electionStep(order, self, down, claimed)
      if (step.kind === 'claim') {
        // Ranked first among the peers this node knows, which may be few just after start. The claim: announce the
        // blob in the DHT, wait for the others' announcements to land, and look again. Every node that ranked
        // itself first does the same, so they all see each other's records, and all but the highest ranked
        // follow it instead.
        claimed = true
        this.#c.announcer.announce(digest)
        await sleep(this.#init.electionClaimMs ?? ELECTION_CLAIM_MS, undefined, { signal })
        continue
      }
      if (step.kind === 'pull') {
        log.debug({ digest, candidates: order.length }, 'elected to pull blob from origin')
        throw new SwarmElectedError(`this agent pulls ${digest} for its peers`)
      }
      const acting = step.peer
      let geometry: ChunkGeometry
      try {
        // A loaded peer may time out a handshake: tried a few times, unless it refuses.
        geometry = await retry(
          () =>
            client.fetch(peerIdFromString(acting), digest, want.registry, want.name, {
              signal: AbortSignal.any([
                signal,
                AbortSignal.timeout(Math.min(this.#init.stallTimeoutMs, ELECTED_FETCH_TIMEOUT_MS)),
              ]),
            }),
          signal,
        )
      } catch (err) {
        signal.throwIfAborted()
        log.debug({ digest, peer: acting, err: (err as Error).message }, 'elected peer did not take blob')
        down.add(acting)
        continue
      }
      // Followed from the start: its DHT record may take longer than its first chunks.
      this.#c.noteInterest(digest, acting)
      if (await follow(geometry, followStallMs(down.size, this.#init.stallTimeoutMs))) return
      log.info({ digest, peer: acting }, 'elected peer stalled, the next one takes over')
      down.add(acting)
    }
  }

  /**
   * The bounded wait before an election, so nodes started together count the same candidates: until the node is
   * ELECTION_SETTLE_MS old, and while it has no peer at all (its bootstrap peers were not up yet when it started)
   * until it finds one, dialling them again every second, for at most ELECTION_ALONE_WAIT_MS of its life. A node
   * that is alone after that is alone: it pulls for itself.
   */
  async #settle(signal: AbortSignal): Promise<void> {
    const { node, now, startedAt } = this.#c
    const { settleMs, settleUntil, aloneUntil } = settleTimes(startedAt, this.#init)
    const settle = settleUntil - now()
    if (settle > 0) await sleep(settle, undefined, { signal })
    let wasAlone = false
    while (node.getPeers().length === 0 && now() < aloneUntil) {
      wasAlone = true
      await node.services.bootstrap.bootstrap({ signal }).catch(() => {})
      if (node.getPeers().length > 0) break
      await sleep(ELECTION_ALONE_RETRY_MS, undefined, { signal })
    }
    // Just connected: its DHT learns of the others from the first answers, as at start.
    if (wasAlone && node.getPeers().length > 0) await sleep(settleMs, undefined, { signal })
  }

  /** Who else may pull `digest` for the swarm, as this node knows them now. */
  async #candidates(digest: Digest, signal: AbortSignal): Promise<string[]> {
    const { node, lookups } = this.#c
    const ids = new Set<string>()
    for (const p of node.getPeers()) ids.add(p.toString())
    // Peers the DHT told us about (its lookups fill the peer store), connected or not: nodes started together are
    // each connected to a few, but every one's self-lookup learns of the rest through the bootstrap node.
    for (const p of await node.peerStore.all()) if (mayStand(p)) ids.add(p.id.toString())
    for (const p of this.#c.interested(digest)) ids.add(p)
    // The peers closest to the blob's key in the DHT: every node that asks gets about the same ones, whoever it
    // knew before (all of them in a swarm of up to K = 20 nodes).
    const closest = (async () => {
      const bounded = AbortSignal.any([signal, AbortSignal.timeout(ELECTION_LOOKUP_MS)])
      for await (const p of node.peerRouting.getClosestPeers(blobCid(digest).multihash.bytes, { signal: bounded }))
        ids.add(p.id.toString())
    })().catch(() => {})
    await Promise.all([lookups.lookup(digest, (p) => ids.add(p.id.toString()), { signal }).catch(() => {}), closest])
    return candidatesAmong(ids, { self: node.peerId.toString(), trusted: this.#c.trusted, banned: this.#c.banned })
  }
}
