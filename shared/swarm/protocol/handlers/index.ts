import type { Request, RequestType } from '../messages.ts'
import { handleBulk } from './bulk.ts'
import { handleChunk } from './chunk.ts'
import type { Handler } from './context.ts'
import { handleFetch } from './fetch.ts'
import { handleHave } from './have.ts'
import { handleMap } from './map.ts'
import { handlePrefetch } from './prefetch.ts'

export type { BulkIssuer, HandlerContext } from './context.ts'

/** One handler per request type; the server dispatches on `t`. */
export const HANDLERS: { readonly [K in RequestType]: Handler<Extract<Request, { t: K }>> } = {
  map: handleMap,
  have: handleHave,
  chunk: handleChunk,
  fetch: handleFetch,
  bulk: handleBulk,
  prefetch: handlePrefetch,
}

export function dispatch(req: Request, ctx: Parameters<Handler<Request>>[1]): Promise<void> {
  return (HANDLERS[req.t] as Handler<Request>)(req, ctx)
}
