import { setTimeout as sleep } from 'node:timers/promises'
import type { Digest } from '../shared/oci/index.ts'
import { rendezvousOwner, type SeederRef } from '../shared/swarm/index.ts'
import { type ChunkClient, RemoteError, type RequestContext } from '../shared/swarm/protocol/index.ts'
import type { RemoteSeeder } from './preheat.ts'

/** How often the owner is asked whether it has signed the blob's map (it does once the blob is whole). */
const MAP_POLL_MS = 200

/**
 * Rendezvous ownership among this seeder and `others`: undefined when this seeder owns `digest`, else the
 * owner, which is asked to pull it (once for the whole swarm) and watched until it holds the whole blob.
 */
export function rendezvousOwners(
  self: string,
  others: readonly SeederRef[],
  client: Pick<ChunkClient, 'fetch' | 'getMap' | 'prefetch'>,
): (digest: Digest) => RemoteSeeder | undefined {
  return (digest) => {
    // The same rule agents use to pick the seeder they ask for a blob: both sides must agree on the owner.
    const owner = rendezvousOwner<SeederRef | string>([self, ...others], digest)
    if (owner === undefined || typeof owner === 'string') return undefined
    return {
      id: owner.id,
      // Watched through its signed map, not `have`: a super-seeding owner would count a `have` as a peer about to
      // download the blob and hand it chunks to spread, holding them back from the agents.
      async seed(d, registry, name, onBytes, signal) {
        // `prefetch` asks the owner to pull the blob and keep it for its --preheat-ttl; an owner that does not
        // list this seeder in its --bootstrap refuses, and then pulls it for the swarm (`fetch`) without the hold.
        let ask = async () => {
          await client.prefetch(owner.addr, d, registry, name, { hold: true, signal })
        }
        try {
          await ask()
        } catch (err) {
          if (!(err instanceof RemoteError)) throw err
          ask = async () => {
            await client.fetch(owner.addr, d, registry, name, { signal })
          }
          await ask()
        }
        for (;;) {
          const map = await client.getMap(owner.addr, d, { signal })
          if (map !== undefined) {
            onBytes(map.map.size)
            return
          }
          await sleep(MAP_POLL_MS, undefined, { signal })
          // A pull that failed at the owner leaves no trace but a missing map: ask again (joins a running one).
          await ask()
        }
      },
    }
  }
}

export class PrefetchNotAllowedError extends Error {
  override name = 'PrefetchNotAllowedError'
  readonly code = 'PREFETCH_NOT_ALLOWED'
}

/**
 * A seeder's answer to another seeder's `prefetch`: the rendezvous owner of a blob that seeder is preheating
 * pulls it (once for the swarm) and keeps it like its own preheats. Only seeders named in this one's
 * --bootstrap may ask: a hold takes quota, which no agent or stranger may do.
 */
export function seederPrefetchHandler(init: {
  readonly seeders: readonly SeederRef[]
  readonly start: (digest: Digest, registry: string, name: string) => { readonly done: Promise<void> }
  readonly keep: (digest: Digest) => void
}): (
  digest: Digest,
  registry: string,
  name: string,
  ctx: RequestContext,
  opts: { readonly hold: boolean },
) => Promise<void> {
  const trusted = new Set(init.seeders.map((s) => s.id))
  return async (digest, registry, name, ctx, opts) => {
    // Without `hold` it is a preheat looking for agents: a seeder is not one.
    if (!opts.hold) throw new PrefetchNotAllowedError('a seeder is not an agent')
    if (!trusted.has(ctx.peer.toString())) throw new PrefetchNotAllowedError('only a seeder in --bootstrap may ask')
    init.start(digest, registry, name).done.then(
      () => init.keep(digest),
      () => {},
    )
  }
}
