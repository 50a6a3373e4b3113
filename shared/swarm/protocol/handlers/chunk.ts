import { chunkCount, chunkRange } from '../../../chunks/chunk-map.ts'
import { InvalidMessageError } from '../errors.ts'
import { encodeResponse, type Request } from '../messages.ts'
import type { HandlerContext } from './context.ts'

export async function handleChunk(req: Extract<Request, { t: 'chunk' }>, ctx: HandlerContext): Promise<void> {
  const have = ctx.source.have(req.digest, ctx)
  if (have === undefined) {
    await ctx.frames.write([encodeResponse({ t: 'none' })], ctx)
    return
  }
  const count = chunkCount(have.size, have.chunkSize)
  if (req.index >= count) throw new InvalidMessageError(`chunk index ${req.index} out of range 0..${count - 1}`)
  // No bitfield check: a super-seeding seeder advertises a subset but still serves any chunk it holds.
  const release = ctx.uploads.tryAcquire()
  if (release === undefined) {
    await ctx.frames.write([encodeResponse({ t: 'busy' })], ctx)
    return
  }
  try {
    const chunk = await ctx.source.readChunk(req.digest, req.index, ctx)
    ctx.signal.throwIfAborted()
    if (chunk === undefined) {
      await ctx.frames.write([encodeResponse({ t: 'none' })], ctx)
      return
    }
    const { start, end } = chunkRange(have, req.index)
    if (chunk.bytes.byteLength !== end - start) {
      throw new Error(
        `chunk source returned ${chunk.bytes.byteLength} bytes for chunk ${req.index}, want ${end - start}`,
      )
    }
    const header = encodeResponse({
      t: 'chunk',
      index: req.index,
      length: chunk.bytes.byteLength,
      ...(chunk.attestation === undefined ? {} : { attestation: chunk.attestation }),
    })
    await ctx.frames.write([header], ctx)
    await ctx.frames.writeData(chunk.bytes, { signal: ctx.signal, bucket: ctx.bucket })
    ctx.onServed?.(ctx.peer, chunk.bytes.byteLength, { digest: req.digest, index: req.index })
  } finally {
    release()
  }
}
