// Wire-level numbers shared by the libp2p chunk protocol and the bulk (HTTPS) path.

/**
 * Chunk bytes are written in slices of this size: each slice first takes its bytes from the upload bucket, so a
 * throttled upload flows evenly instead of in chunk-sized bursts, and the muxer's drain back-pressure applies.
 */
export const DATA_SLICE_BYTES = 64 * 1024
/** Without a throttle, bigger slices cost fewer send calls (yamux still frames them at its own size). */
export const UNTHROTTLED_DATA_SLICE_BYTES = 1024 * 1024
