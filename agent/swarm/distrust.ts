// What a blob proven chunk by chunk and then failing its digest costs: someone who signed a proof lied.
import type { ChunkAttestation, SignedChunkMap } from '../../shared/chunks/index.ts'
import type { Logger } from '../../shared/log/index.ts'
import type { Metrics } from '../../shared/metrics/index.ts'
import type { DigestMismatchError } from '../../shared/oci/index.ts'
import type { LiveBlob } from '../../shared/swarm/live.ts'
import type { MapStore } from '../../shared/swarm/maps/index.ts'
import { DEFAULT_BAN_MS } from '../../shared/swarm/scheduler/index.ts'
import type { PartialSink } from '../blobs/fill.ts'

/** The proofs a blob was taken on: its chunks' attestations and its signed map, if any. */
export interface Proofs {
  readonly attestations: ReadonlyMap<number, ChunkAttestation>
  readonly map: SignedChunkMap | undefined
}

/**
 * Who to ban for a blob whose proven bytes failed its digest: every agent that signed a proof of it. A seeder's
 * word is not overruled by a digest an agent may have mangled itself (their chunks came from the same peers).
 */
export function signersToBan(proofs: Proofs, trusted: ReadonlySet<string>): string[] {
  const signers = new Set([...proofs.attestations.values()].map((a) => a.signer))
  if (proofs.map !== undefined) signers.add(proofs.map.signer)
  return [...signers].filter((s) => !trusted.has(s))
}

export interface DistrustComponents {
  readonly trusted: ReadonlySet<string>
  /** The swarm's bans, shared by every download: peer → banned until. */
  readonly bans: Map<string, number>
  readonly now: () => number
  readonly maps: MapStore
  readonly metrics: Metrics
  readonly log: Logger
}

/** Bans the liars (see signersToBan), aborts the readers that took any of the bytes, drops the partial and map. */
export function distrust(c: DistrustComponents, dl: PartialSink, blob: LiveBlob, err: DigestMismatchError): void {
  for (const s of signersToBan(blob, c.trusted)) {
    c.bans.set(s, c.now() + DEFAULT_BAN_MS)
    c.log.warn({ digest: blob.digest, signer: s }, 'chunk proofs of a blob that failed its digest, banning')
  }
  c.metrics.digestFailures.inc({ source: 'peer' })
  dl.distrust?.(blob.partial, err)
  void blob.partial.discard().catch(() => {})
  void c.maps.delete(blob.digest).catch(() => {})
}
