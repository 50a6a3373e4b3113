import { takeChunk } from '../../serve/index.ts'
import { encodeResponse, type Request } from '../messages.ts'
import type { HandlerContext } from './context.ts'

export async function handleChunk(req: Extract<Request, { t: 'chunk' }>, ctx: HandlerContext): Promise<void> {
  const chunk = await takeChunk(ctx.source, ctx.uploads, req.digest, req.index, ctx)
  if (chunk.t !== 'chunk') {
    await ctx.frames.write([encodeResponse({ t: chunk.t })], ctx)
    return
  }
  try {
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
    chunk.release()
  }
}
