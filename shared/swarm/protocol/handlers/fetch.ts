import { encodeResponse, type Request } from '../messages.ts'
import type { HandlerContext } from './context.ts'

/** A seeder starts pulling the blob from its origin for the swarm; other nodes say they cannot. */
export async function handleFetch(req: Extract<Request, { t: 'fetch' }>, ctx: HandlerContext): Promise<void> {
  const { source } = ctx
  if (source.fetch === undefined) {
    await ctx.frames.write([encodeResponse({ t: 'error', message: 'fetch not supported by this peer' })], ctx)
    return
  }
  let started: { size: number; chunkSize: number }
  try {
    started = await source.fetch(req.digest, req.registry, req.name, ctx.signal, ctx)
  } catch (err) {
    ctx.signal.throwIfAborted()
    // The peer learns why (registry unreachable, unknown blob); origin errors carry no credentials.
    const message = err instanceof Error ? `${err.name}: ${err.message}` : 'fetch failed'
    await ctx.frames.write([encodeResponse({ t: 'error', message })], ctx)
    return
  }
  ctx.signal.throwIfAborted()
  await ctx.frames.write([encodeResponse({ t: 'fetching', size: started.size, chunkSize: started.chunkSize })], ctx)
}
