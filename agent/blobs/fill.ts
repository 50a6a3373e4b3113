import type { Logger } from '../../shared/log/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import type { RecentPull } from '../../shared/ops/index.ts'
import type { Upstream } from '../../shared/origin/index.ts'
import type { BlobInfo, ContentStore, PartialBlob } from '../../shared/store/index.ts'
import type { Download } from './download.ts'
import type { BlobFiller, BlobRequest } from './service.ts'

/** Where a filler puts a blob's bytes: it attaches the partial that the download's readers follow. */
export interface PartialSink {
  /** `verifiedPerChunk`: each chunk was checked against a trusted chunk map before it was written. */
  attach(partial: PartialBlob, opts?: { verifiedPerChunk?: boolean }): void
  /**
   * The bytes of `partial` failed the blob digest: readers that took any of them are aborted with `err` (never
   * ended cleanly on them); readers that took none go on with whatever is attached next.
   */
  distrust?(partial: PartialBlob, err: unknown): void
}

/** A blob and the repository it is read from. */
export interface BlobRef {
  readonly digest: Digest
  readonly upstream: Upstream
  readonly name: string
}

/** The swarm, as the fill policy sees it: fills the sink from peers and seeders, or rejects. */
export interface SwarmFill {
  fill(blob: BlobRef, sink: PartialSink, signal: AbortSignal): Promise<void>
}

/** Fills the sink from the origin with the client's credentials (the GET is that client's authorization check). */
export type OriginFill = (
  blob: BlobRef & { readonly authorization: string | undefined },
  sink: PartialSink,
  signal: AbortSignal,
) => Promise<void>

export interface FillPolicyInit {
  readonly store: Pick<ContentStore, 'stat'>
  /** Absent when the swarm is off: every blob comes from the origin. */
  readonly swarm?: SwarmFill
  readonly origin: OriginFill
  /**
   * Asks the origin whether the client that starts a download may read the blob. The origin GET is that check
   * when the origin fills the blob; when the swarm fills it there is no GET, so this runs first (a HEAD with the
   * client's own credentials, cached by the authorizer). Absent: nothing is asked (tests, or a swarm-less agent).
   */
  readonly authorize?: (
    blob: BlobRef & { readonly authorization: string | undefined },
    signal: AbortSignal,
  ) => Promise<void>
  /** A blob complete in the store that did not come through the swarm: peers may have it now. */
  readonly onComplete?: (digest: Digest, info: BlobInfo) => void
  /** The swarm gave up on a blob that is not complete: stop telling peers we have it. */
  readonly onAbandoned?: (digest: Digest) => void
  /**
   * Each fill as it ends, for the recent-pulls list: how long it took, whether it worked, and where its bytes came
   * from (`swarm`; `origin` when the swarm is off; `swarm+origin` once the origin was asked after the swarm).
   */
  readonly onPulled?: (pull: RecentPull) => void
  /** Epoch ms (default Date.now). */
  readonly now?: () => number
  /** Agent shutdown: ends both sources, and a swarm failure then is not a reason to go to the origin. */
  readonly signal: AbortSignal
  readonly log: Pick<Logger, 'warn'>
}

/**
 * The agent's fill policy: swarm first, else the origin, then announce. A pull never fails because of the swarm
 * while the origin is healthy; the origin resumes after whatever the swarm already wrote (the partial is the same).
 */
export function fillPolicy(init: FillPolicyInit): BlobFiller {
  const fill = swarmThenOrigin(init)
  const { onPulled } = init
  if (onPulled === undefined) return (dl, req) => fill(dl, req, () => {})
  const now = init.now ?? Date.now
  return async (dl, req) => {
    const started = now()
    let askedOrigin = false
    let ok = false
    try {
      await fill(dl, req, () => {
        askedOrigin = true
      })
      ok = true
    } finally {
      const via = init.swarm === undefined ? 'origin' : askedOrigin ? 'swarm+origin' : 'swarm'
      const at = now()
      onPulled({ digest: req.digest, size: dl.knownSize, via, ok, ms: at - started, at })
    }
  }
}

/** The policy itself; `toOrigin` is told before the origin is asked. */
function swarmThenOrigin(init: FillPolicyInit) {
  const { store, swarm, signal, log } = init
  return async (dl: Download, req: BlobRequest, toOrigin: () => void): Promise<void> => {
    if (swarm !== undefined) {
      // Peers hold the bytes, but the origin still decides who reads them: a refusal ends the download here.
      await init.authorize?.(req, signal)
      try {
        await swarm.fill(req, dl, signal)
        return
      } catch (err) {
        // Peers get a blob's chunks while the swarm fills it or once it is complete, not in between.
        if ((await store.stat(req.digest)) === undefined) init.onAbandoned?.(req.digest)
        if (signal.aborted) throw err
        // Elected by its peers to pull the blob: the origin pull below is the plan, not a fallback.
        if ((err as { code?: string }).code !== 'SWARM_ELECTED')
          log.warn({ digest: req.digest, err: (err as Error).message }, 'swarm could not deliver, fetching from origin')
      }
    }
    toOrigin()
    await init.origin(req, dl, signal)
    if (swarm === undefined) return
    // Complete from the origin: servable to peers now, as it would be after a restart.
    const info = await store.stat(req.digest)
    if (info !== undefined) init.onComplete?.(req.digest, info)
  }
}
