import { encodeResponse, type Request } from '../messages.ts'
import type { HandlerContext } from './context.ts'

/** An agent accepts (or refuses) a seeder's request to pull a blob into its cache; seeders say they cannot. */
export async function handlePrefetch(req: Extract<Request, { t: 'prefetch' }>, ctx: HandlerContext): Promise<void> {
  if (ctx.prefetch === undefined) {
    await ctx.frames.write([encodeResponse({ t: 'error', message: 'prefetch not supported by this peer' })], ctx)
    return
  }
  try {
    await ctx.prefetch(req.digest, req.registry, req.name, ctx, { hold: req.hold === true })
  } catch (err) {
    ctx.signal.throwIfAborted()
    const message = err instanceof Error ? `${err.name}: ${err.message}` : 'prefetch refused'
    await ctx.frames.write([encodeResponse({ t: 'error', message })], ctx)
    return
  }
  ctx.signal.throwIfAborted()
  await ctx.frames.write([encodeResponse({ t: 'prefetching' })], ctx)
}
