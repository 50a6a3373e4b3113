// What goes on the wire whichever path carries it (libp2p chunk protocol or bulk HTTPS): errors with stable codes,
// per-request deadlines, slicing of chunk bytes. Below both paths.
export { DATA_SLICE_BYTES, UNTHROTTLED_DATA_SLICE_BYTES } from './constants.ts'
export { type Deadline, deadline } from './deadline.ts'
export { exchangeFailure } from './exchange.ts'
export { InvalidMessageError, PeerTimeoutError, ProtocolError, RemoteError } from './errors.ts'
