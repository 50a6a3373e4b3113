import type { Stream } from '@libp2p/interface'
import { InvalidMessageError, PeerTimeoutError, ProtocolError } from './errors.ts'

/**
 * What a failed request/response exchange with a peer throws, whichever protocol: the caller's own abort as it
 * came; a lie (InvalidMessageError), the request's deadline (PeerTimeoutError) or a protocol failure as they are;
 * anything else (a reset stream, a refused dial) as a ProtocolError naming the request. The exchange's stream, if it
 * was opened, is aborted first, with the reason.
 */
export function exchangeFailure(
  err: unknown,
  x: {
    /** The exchange's own signal: the caller's and the request's deadline together. */
    readonly signal: AbortSignal
    readonly callerSignal: AbortSignal | undefined
    readonly stream: Stream | undefined
    /** `have request to <peer>`, `manifest request to <peer>`. */
    readonly what: string
  },
): never {
  const reason: unknown = x.signal.aborted ? x.signal.reason : err
  x.stream?.abort(reason instanceof Error ? reason : new ProtocolError(String(reason)))
  if (x.callerSignal?.aborted) throw x.callerSignal.reason
  if (reason instanceof InvalidMessageError || reason instanceof ProtocolError) throw reason
  if (reason instanceof PeerTimeoutError) throw reason
  const message = reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason)
  throw new ProtocolError(`${x.what} failed: ${message}`, { cause: reason })
}
