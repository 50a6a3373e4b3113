import { encodeSignedChunkMap } from '../../../chunks/signed-map.ts'
import { encodeResponse, type Request } from '../messages.ts'
import type { HandlerContext } from './context.ts'

/** Sends the signed map as a data frame after `{ t: 'map', length }`: a big blob's map outgrows a control frame. */
export async function handleMap(req: Extract<Request, { t: 'map' }>, ctx: HandlerContext): Promise<void> {
  const signed = await ctx.source.map(req.digest, ctx)
  ctx.signal.throwIfAborted()
  if (signed === undefined || signed.map.digest !== req.digest) {
    await ctx.frames.write([encodeResponse({ t: 'none' })], ctx)
    return
  }
  const bytes = encodeSignedChunkMap(signed)
  await ctx.frames.write([encodeResponse({ t: 'map', length: bytes.byteLength })], ctx)
  await ctx.frames.writeData(bytes, ctx)
}
