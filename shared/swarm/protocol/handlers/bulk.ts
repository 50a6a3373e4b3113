import { encodeResponse, type Request } from '../messages.ts'
import type { HandlerContext } from './context.ts'

/**
 * A ticket for the bulk data path: only a peer that reached us over libp2p (so passed pnet, when a swarm key is
 * set, and authenticated its peer id) gets one. `none` when this node serves no bulk port.
 */
export async function handleBulk(req: Extract<Request, { t: 'bulk' }>, ctx: HandlerContext): Promise<void> {
  const port = ctx.bulk?.port
  if (ctx.bulk === undefined || port === undefined) {
    await ctx.frames.write([encodeResponse({ t: 'none' })], ctx)
    return
  }
  const { token, ttlMs } = ctx.bulk.tickets.issue(ctx.peer.toString(), req.digest)
  await ctx.frames.write([encodeResponse({ t: 'bulk', port, token, ttlMs })], ctx)
}
