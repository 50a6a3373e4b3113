// Without an explicit burst a bucket holds this much time's worth of bytes...
export const DEFAULT_BURST_MS = 100
// ...but never less than this, so one socket read (64 KiB on Linux) never waits on itself.
export const MIN_DEFAULT_BURST_BYTES = 64 * 1024
// throttle() releases bytes in pieces this size, so a big chunk flows out smoothly, not in one lump.
export const THROTTLE_SLICE_BYTES = 16 * 1024
