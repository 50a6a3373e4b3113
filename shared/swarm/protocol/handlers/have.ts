import { chunkCount } from '../../../chunks/chunk-map.ts'
import { MAX_HAVE_WAIT_MS } from '../constants.ts'
import { deadline } from '../../wire/deadline.ts'
import type { SourceHave } from '../../serve/index.ts'
import { encodeResponse, type Request } from '../messages.ts'
import type { HandlerContext } from './context.ts'

class HaveWaitElapsed extends Error {
  override name = 'HaveWaitElapsed'
}

/**
 * Long poll: a client that already knows `known` chunks of an incomplete blob is answered when that changes or
 * after min(waitMs, 10 s), so have-updates flow without a push channel.
 */
export async function handleHave(req: Extract<Request, { t: 'have' }>, ctx: HandlerContext): Promise<void> {
  let have = ctx.source.have(req.digest, ctx)
  const waitMs = Math.min(req.waitMs ?? 0, MAX_HAVE_WAIT_MS)
  if (have !== undefined && req.known === have.bitfield.count && !have.complete && waitMs > 0) {
    const wait = deadline(waitMs, () => new HaveWaitElapsed(), [ctx.signal])
    try {
      await ctx.source.waitHave(req.digest, req.known, wait.signal, ctx)
    } catch (err) {
      // The wait elapsing is an answer (the same have again); the request's own deadline is not.
      if (!wait.timedOut) throw err
    } finally {
      wait.dispose()
    }
    ctx.signal.throwIfAborted()
    have = ctx.source.have(req.digest, ctx)
  }
  if (have === undefined) {
    await ctx.frames.write([encodeResponse({ t: 'none' })], ctx)
    return
  }
  checkHave(have)
  const site = ctx.ownSite === undefined ? {} : { site: ctx.ownSite }
  await ctx.frames.write([encodeResponse({ t: 'have', ...have, ...site })], ctx)
}

function checkHave(have: SourceHave): void {
  const n = chunkCount(have.size, have.chunkSize)
  if (have.bitfield.length !== n) {
    throw new Error(`chunk source returned a bitfield of ${have.bitfield.length} for ${n} chunks`)
  }
}
