import type { PeerId } from '@libp2p/interface'
import type { Digest } from '../../oci/index.ts'
import { deadline } from '../wire/deadline.ts'
import { InvalidMessageError, PeerTimeoutError } from '../wire/errors.ts'
import {
  DEFAULT_MAX_PEERS_ASKED,
  DEFAULT_OVERALL_DEADLINE_MS,
  DEFAULT_PEER_TIMEOUT_MS,
  DEFAULT_SEEDER_TIMEOUT_MS,
} from './constants.ts'
import type { ManifestFromPeersInit, PeerManifest } from './index.ts'

export interface PeerManifestResult extends PeerManifest {
  /** The peer that answered. */
  readonly from: string
}

/** What one search did, for metrics and logs. */
export interface ManifestSearch {
  readonly asked: number
  /** Peers that answered bytes not matching the digest (never used). */
  readonly wrong: number
}

type Log = NonNullable<ManifestFromPeersInit['log']>
const silent: Log = { debug: () => {} }

/**
 * Where a manifest body by digest is looked for before the origin: the seeders first (trusted, next to the origin,
 * holding what a preheat resolved), then a few connected peers, one at a time, all within one short deadline.
 * Every answer is verified against the digest by the client; anything else (none, a wrong body, a timeout, a peer of
 * an earlier release that does not speak the protocol) moves on to the next peer, and past the last one the caller
 * goes to the origin. A wrong body bans nobody by itself: it is dropped and counted.
 */
export class ManifestFromPeers {
  readonly #init: ManifestFromPeersInit
  #found = 0
  #wrong = 0

  constructor(init: ManifestFromPeersInit) {
    this.#init = init
  }

  get counts(): { readonly found: number; readonly wrong: number } {
    return { found: this.#found, wrong: this.#wrong }
  }

  /** The order peers are asked in: connected seeders, then up to `maxPeers` other connected peers. */
  candidates(): PeerId[] {
    const seeders = this.#init.seeders()
    const seederIds = new Set(seeders.map((p) => p.toString()))
    const others = this.#init
      .peers()
      .filter((p) => !seederIds.has(p.toString()))
      .sort(() => Math.random() - 0.5)
      .slice(0, this.#init.maxPeers ?? DEFAULT_MAX_PEERS_ASKED)
    return [...seeders, ...others]
  }

  /**
   * `where` (the registry and repository the origin resolved the digest in) goes to seeders only: one that lacks
   * the manifest pulls it from there, once for the whole fleet.
   */
  async get(
    digest: Digest,
    opts: { signal?: AbortSignal; where?: { registry: string; name: string } } = {},
  ): Promise<PeerManifestResult | undefined> {
    const overallMs = this.#init.deadlineMs ?? DEFAULT_OVERALL_DEADLINE_MS
    const peerMs = this.#init.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS
    const seederMs = this.#init.seederTimeoutMs ?? DEFAULT_SEEDER_TIMEOUT_MS
    const seeders = new Set(this.#init.seeders().map((p) => p.toString()))
    const all = deadline(overallMs, () => new PeerTimeoutError(`no peer gave ${digest} within ${overallMs} ms`), [
      opts.signal,
    ])
    const log = this.#init.log ?? silent
    try {
      for (const peer of this.candidates()) {
        if (all.signal.aborted) break
        try {
          const seeder = seeders.has(peer.toString())
          const got = await this.#init.client.get(peer, digest, {
            signal: all.signal,
            timeoutMs: seeder ? seederMs : peerMs,
            ...(seeder && opts.where !== undefined ? { where: opts.where } : {}),
          })
          if (got === undefined) continue
          this.#found++
          return { ...got, from: peer.toString() }
        } catch (err) {
          if (opts.signal?.aborted) throw opts.signal.reason
          if (err instanceof InvalidMessageError) {
            this.#wrong++
            log.debug({ peer: peer.toString(), digest, err }, 'peer answered a wrong manifest, not used')
          } else log.debug({ peer: peer.toString(), digest, err }, 'manifest from peer failed')
        }
      }
      return undefined
    } finally {
      all.dispose()
    }
  }
}
