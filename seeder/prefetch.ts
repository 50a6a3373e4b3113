import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../shared/log/index.ts'
import type { ChunkClient } from '../shared/swarm/protocol/index.ts'
import type { AgentSiteOf } from './agent-sites.ts'
import type { PrefetchReport, PrefetchRequest, SiteCopies } from './preheat.ts'

export interface AgentPrefetchInit {
  readonly client: Pick<ChunkClient, 'prefetch' | 'getHave'>
  /** Connected peers that may be agents (other seeders refuse, and the next candidate is asked). */
  readonly candidates: () => PeerId[]
  readonly log: Pick<Logger, 'debug'>
  /** An agent that has not finished every blob by then is counted as not complete. */
  readonly timeoutMs?: number
  readonly random?: () => number
  /** The site a connected agent is in; undefined: none or not known. Needed for `sites` (see agent-sites.ts). */
  readonly siteOf?: AgentSiteOf
}

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000
const HAVE_WAIT_MS = 5000
const MAX_ERRORS = 16
/** An agent that accepted may take a moment to start; nothing held for this long means its download failed. */
const NOTHING_POLL_MS = 250
const NOTHING_LIMIT_MS = 15_000

/**
 * The agents scope of a preheat. Copies per site first: for each site of `req.sites`, that many of its
 * connected agents are asked (over the chunk protocol's `prefetch`, with `hold`) to pull the blobs through
 * the swarm and keep them pinned for their --preheat-ttl. Then "also ask N agents": more connected agents,
 * anywhere, until N accepted in all (site copies count). Each accepted agent is watched until it holds
 * every blob. Agents that refuse (busy, untrusted, not an agent, not holding content) are replaced by the
 * next candidate of the same kind.
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
    const fail = (peer: PeerId, err: unknown) => {
      if (errors.length < MAX_ERRORS) errors.push(`${peer.toString().slice(-8)}: ${(err as Error).message}`)
    }
    const accepted: PeerId[] = []
    const siteOfAccepted = new Map<PeerId, string>()
    const sites = new Map<string, { wanted: number; accepted: number; complete: number }>(
      Object.entries(req.sites).map(([s, wanted]) => [s, { wanted, accepted: 0, complete: 0 }]),
    )
    const siteReport = (): { sites?: Record<string, SiteCopies> } =>
      sites.size === 0 ? {} : { sites: Object.fromEntries([...sites].map(([s, c]) => [s, { ...c }])) }
    const report = (): PrefetchReport => ({
      asked,
      accepted: accepted.length,
      complete,
      errors: [...errors],
      ...siteReport(),
    })
    let asked = 0
    let complete = 0
    const tried = new Set<PeerId>()
    const ask = async (peer: PeerId, site: string | undefined): Promise<boolean> => {
      tried.add(peer)
      asked++
      try {
        const hold = site === undefined ? {} : { hold: true }
        for (const b of req.blobs)
          await init.client.prefetch(peer, b.digest, req.registry, req.name, { ...hold, signal })
        accepted.push(peer)
        if (site !== undefined) siteOfAccepted.set(peer, site)
        return true
      } catch (err) {
        if (outer.aborted) throw err
        fail(peer, err)
        return false
      } finally {
        onReport(report())
      }
    }
    if (sites.size > 0) {
      const siteOf = init.siteOf ?? (async () => undefined)
      const members = new Map<string, PeerId[]>()
      for (const p of peers) {
        const s = await siteOf(p)
        if (s !== undefined && sites.has(s)) members.set(s, [...(members.get(s) ?? []), p])
      }
      for (const [site, copies] of sites) {
        for (const peer of members.get(site) ?? []) {
          if (copies.accepted >= copies.wanted) break
          if (await ask(peer, site)) copies.accepted++
        }
        if (copies.accepted < copies.wanted && errors.length < MAX_ERRORS)
          errors.push(
            `site ${site}: ${copies.accepted} of ${copies.wanted} copies (connected agents of the site: ${members.get(site)?.length ?? 0})`,
          )
      }
    }
    for (const peer of peers) {
      if (accepted.length >= req.agents) break
      if (!tried.has(peer)) await ask(peer, undefined)
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
          const site = siteOfAccepted.get(peer)
          if (site !== undefined) sites.get(site)!.complete++
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
