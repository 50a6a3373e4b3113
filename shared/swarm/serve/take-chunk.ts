import type { ChunkAttestation } from '../../chunks/attestation.ts'
import { chunkCount, chunkRange } from '../../chunks/chunk-map.ts'
import type { Digest } from '../../oci/digest.ts'
import { InvalidMessageError } from '../wire/errors.ts'
import type { ChunkSource, RequestContext } from './chunk-source.ts'
import type { UploadSlots } from './upload-slots.ts'

export type ServableChunk =
  | { readonly t: 'none' }
  | { readonly t: 'busy' }
  | { readonly t: 'chunk'; readonly bytes: Uint8Array; readonly attestation?: ChunkAttestation; release(): void }

/**
 * A chunk ready to send, holding an upload slot until `release` (the caller's `finally`). Shared by the libp2p
 * stream and the bulk path so both apply the same checks and draw on the same slots. An index out of range is
 * the requester's fault (InvalidMessageError).
 */
export async function takeChunk(
  source: ChunkSource,
  uploads: UploadSlots,
  digest: Digest,
  index: number,
  ctx: RequestContext,
): Promise<ServableChunk> {
  const have = source.have(digest, ctx)
  if (have === undefined) return { t: 'none' }
  const count = chunkCount(have.size, have.chunkSize)
  if (index >= count) throw new InvalidMessageError(`chunk index ${index} out of range 0..${count - 1}`)
  // No bitfield check: a super-seeding seeder advertises a subset but still serves any chunk it holds.
  const release = uploads.tryAcquire(ctx.peer.toString())
  if (release === undefined) return { t: 'busy' }
  try {
    const chunk = await source.readChunk(digest, index, ctx)
    ctx.signal.throwIfAborted()
    if (chunk === undefined) {
      release()
      return { t: 'none' }
    }
    const { start, end } = chunkRange(have, index)
    if (chunk.bytes.byteLength !== end - start) {
      throw new Error(`chunk source returned ${chunk.bytes.byteLength} bytes for chunk ${index}, want ${end - start}`)
    }
    return { t: 'chunk', ...chunk, release }
  } catch (err) {
    release()
    throw err
  }
}
