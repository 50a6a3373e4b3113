// The origin's rate cap is one use of the generic limiter; re-exported for callers that already import it here.
export { OriginClient, type OriginClientOptions, type OriginRequest, type OriginResponse } from './client.ts'
export { type Credential, credentialsFrom, parseBasicAuthorization } from './credentials.ts'
export {
  InvalidOriginPathError,
  InvalidUpstreamError,
  OriginError,
  type OriginErrorCode,
  OriginStatusError,
  originStatusError,
} from './errors.ts'
export { type Method, readBounded } from './http.ts'
export {
  type BlobPullOrigin,
  parseContentRange,
  pullBlob,
  type PullBlobOptions,
  type PullProgress,
} from './pull-blob.ts'
export type { RetryPolicy } from './retry.ts'
export { defaultScope } from './scope.ts'
export {
  DOCKER_HUB,
  originUrl,
  parseOriginLocation,
  resolveUpstream,
  type Upstream,
  type UpstreamResolverOptions,
  upstreamName,
} from './upstream.ts'
export { type Challenge, formatChallenge, parseWwwAuthenticate } from './www-authenticate.ts'
