import { type SignedChunkMap, verifySignedChunkMap } from '../../shared/chunks/index.ts'
import type { Logger } from '../../shared/log/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import type { ChunkClient } from '../../shared/swarm/protocol/index.ts'
import { type SeederRef, seedersInOrder } from '../../shared/swarm/index.ts'
import { retry } from './retry.ts'

export interface SeederMapComponents {
  readonly seeders: readonly SeederRef[]
  readonly client: ChunkClient
  readonly trusted: ReadonlySet<string>
  readonly log: Logger
}

/** A blob's signed map from the seeders in rendezvous order, verified against the trusted seeder keys. */
export async function findSeederMap(
  c: SeederMapComponents,
  digest: Digest,
  signal: AbortSignal,
  attempts = 3,
): Promise<SignedChunkMap | undefined> {
  for (const s of seedersInOrder(c.seeders, digest)) {
    try {
      const signed = await retry(
        () => c.client.getMap(s.addr, digest, { signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]) }),
        signal,
        attempts,
      )
      if (signed === undefined) continue
      await verifySignedChunkMap(signed, c.trusted)
      return signed
    } catch (err) {
      c.log.debug({ seeder: s.id, digest, err: (err as Error).message }, 'no map from seeder')
    }
  }
  return undefined
}
