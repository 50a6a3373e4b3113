import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../shared/log/index.ts'
import type { ChunkClient } from '../shared/swarm/protocol/index.ts'
import type { PrefetchReport, PrefetchRequest } from './preheat.ts'

export interface AgentPrefetchInit {
  readonly client: Pick<ChunkClient, 'prefetch' | 'getHave'>
  /** Connected peers that may be agents (other seeders refuse, and the next candidate is asked). */
  readonly candidates: () => PeerId[]
  readonly log: Pick<Logger, 'debug'>
  /** An agent that has not finished every blob by then is counted as not complete. */
  readonly timeoutMs?: number
  readonly random?: () => number
}

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000
const HAVE_WAIT_MS = 5000
const MAX_ERRORS = 16
/** An agent that accepted may take a moment to start; nothing held for this long means its download failed. */
const NOTHING_POLL_MS = 250
const NOTHING_LIMIT_MS = 15_000

/**
 * The "also ask N agents" scope of a preheat: N connected agents are asked (over the chunk protocol's
 * `prefetch`) to pull the blobs through the swarm into their caches, and watched until they hold them all.
 * Agents that refuse (busy, untrusted, not an agent) are replaced by the next candidate.
 */
export function agentPrefetcher(
  init: AgentPrefetchInit,
): (req: PrefetchRequest, onReport: (r: PrefetchReport) => void, signal: AbortSignal) => Promise<PrefetchReport> {
  return async (req, onReport, outer) => {
    const signal = AbortSignal.any([outer, AbortSignal.timeout(init.timeoutMs ?? DEFAULT_TIMEOUT_MS)])
    const random = init.random ?? Math.random
    const peers = init
      .candidates()
      .map((p) => ({ p, r: random() }))
      .sort((a, b) => a.r - b.r)
      .map((x) => x.p)
    const errors: string[] = []
    const report = (): PrefetchReport => ({ asked, accepted: accepted.length, complete, errors: [...errors] })
    const fail = (peer: PeerId, err: unknown) => {
      if (errors.length < MAX_ERRORS) errors.push(`${peer.toString().slice(-8)}: ${(err as Error).message}`)
    }
    const accepted: PeerId[] = []
    let asked = 0
    let complete = 0
    for (const peer of peers) {
      if (accepted.length >= req.agents) break
      asked++
      try {
        for (const b of req.blobs) await init.client.prefetch(peer, b.digest, req.registry, req.name, { signal })
        accepted.push(peer)
      } catch (err) {
        if (outer.aborted) throw err
        fail(peer, err)
      }
      onReport(report())
    }
    await Promise.all(
      accepted.map(async (peer) => {
        try {
          for (const b of req.blobs) {
            let known: number | undefined
            let nothingSince: number | undefined
            for (;;) {
              const have = await init.client.getHave(peer, b.digest, {
                ...(known === undefined ? {} : { known, waitMs: HAVE_WAIT_MS }),
                signal,
              })
              if (have?.complete === true) break
              if (have === undefined) {
                // Not started yet (or failed): a `have` of nothing is answered at once, so pace the asking.
                nothingSince ??= performance.now()
                if (performance.now() - nothingSince > NOTHING_LIMIT_MS)
                  throw new Error(`agent holds nothing of ${b.digest}`)
                known = undefined
                await sleep(NOTHING_POLL_MS, undefined, { signal })
                continue
              }
              nothingSince = undefined
              known = have.bitfield.count
            }
          }
          complete++
        } catch (err) {
          if (outer.aborted) throw err
          init.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'agent prefetch not confirmed')
          fail(peer, err)
        }
        onReport(report())
      }),
    )
    return report()
  }
}
