import type { ChunkAttestation } from '../../chunks/attestation.ts'
import { chunkCount, chunkRange } from '../../chunks/chunk-map.ts'
import type { Digest } from '../../oci/digest.ts'
import { outsideSiteRules } from '../sites.ts'
import { InvalidMessageError } from '../wire/errors.ts'
import type { ChunkBuffers } from './chunk-buffers.ts'
import type { ChunkSource, RequestContext } from './chunk-source.ts'
import { SLOT_WAIT_MS, type UploadSlots } from './upload-slots.ts'

export type ServableChunk =
  | { readonly t: 'none' }
  | { readonly t: 'busy' }
  | { readonly t: 'chunk'; readonly bytes: Uint8Array; readonly attestation?: ChunkAttestation; release(): void }

/**
 * A chunk ready to send, holding an upload slot until `release` (the caller's `finally`, once the transport no longer
 * refers to the bytes: with `buffers` they are reused after it). Shared by the libp2p
 * stream and the bulk path so both apply the same checks and draw on the same slots. An index out of range is
 * the requester's fault (InvalidMessageError).
 */
export async function takeChunk(
  source: ChunkSource,
  uploads: UploadSlots,
  digest: Digest,
  index: number,
  ctx: RequestContext,
  buffers?: ChunkBuffers,
): Promise<ServableChunk> {
  const have = source.have(digest, ctx)
  if (have === undefined) return { t: 'none' }
  const count = chunkCount(have.size, have.chunkSize)
  if (index >= count) throw new InvalidMessageError(`chunk index ${index} out of range 0..${count - 1}`)
  // No bitfield check: a super-seeding seeder advertises a subset but still serves any chunk it holds.
  const peer = ctx.peer.toString()
  const { start, end } = chunkRange(have, index)
  // A small blob's chunk or a short last chunk goes into a site as often as its members ask: not held back for one
  // member's copy (the chunk's key is what a seeder's once-per-site rule goes by), see outsideSiteRules.
  const small = outsideSiteRules(have.size, { length: end - start, chunkSize: have.chunkSize })
  const key = small ? undefined : `${digest}#${index}`
  const release = uploads.tryAcquire(peer, key) ?? (await waitForSlot(uploads, peer, key, ctx.signal))
  if (release === undefined) return { t: 'busy' }
  // With `buffers`, the chunk is read into one of them, given back with the slot (the caller's `finally`).
  const into = buffers?.take(end - start)
  let given = false
  const done = (): void => {
    release()
    // Once: a buffer given back twice would be handed to two senders at the same time.
    if (into === undefined || given) return
    given = true
    buffers!.give(into)
  }
  try {
    const chunk = await source.readChunk(digest, index, ctx, into)
    ctx.signal.throwIfAborted()
    if (chunk === undefined) {
      done()
      return { t: 'none' }
    }
    if (chunk.bytes.byteLength !== end - start) {
      throw new Error(`chunk source returned ${chunk.bytes.byteLength} bytes for chunk ${index}, want ${end - start}`)
    }
    return { t: 'chunk', ...chunk, release: done }
  } catch (err) {
    done()
    throw err
  }
}

/**
 * A short wait for a freed upload slot (SLOT_WAIT_MS), in the slots' queue: undefined when the queue is full, the
 * wait ends without a slot, or the request is aborted. An answer that comes a little later is still an answer to a
 * client of any version; only `busy` sends the receiver elsewhere.
 */
function waitForSlot(
  uploads: UploadSlots,
  peer: string,
  chunk: string | undefined,
  signal: AbortSignal,
): Promise<(() => void) | undefined> {
  if (signal.aborted) return Promise.resolve(undefined)
  return new Promise((resolve) => {
    const cancel = uploads.wait(peer, (release) => done(release), chunk)
    if (cancel === undefined) return resolve(undefined)
    const giveUp = (): void => {
      if (cancel()) done(undefined)
    }
    // Granted from a release, never synchronously from wait(): the timer and listener exist by then.
    const timer = setTimeout(giveUp, SLOT_WAIT_MS)
    signal.addEventListener('abort', giveUp, { once: true })
    function done(release: (() => void) | undefined): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', giveUp)
      resolve(release)
    }
  })
}
