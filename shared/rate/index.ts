export { throttle, throttled } from './throttle.ts'
export { TokenBucket, type TokenBucketOptions } from './token-bucket.ts'
export { bothBuckets } from './both.ts'
