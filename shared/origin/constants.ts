/** Defaults for the origin client. Units are in the names. */

export const DEFAULT_USER_AGENT = 'shoal/0.1'
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000
// Between two body bytes, not for the whole body: a 10 GiB layer may take minutes.
export const DEFAULT_BODY_TIMEOUT_MS = 60_000

export const DEFAULT_RETRY_ATTEMPTS = 3
export const DEFAULT_RETRY_BASE_DELAY_MS = 200
export const DEFAULT_RETRY_MAX_DELAY_MS = 5_000

// Registries redirect blobs to storage once or twice; more than this is a loop.
export const MAX_REDIRECTS = 5

// The token endpoint is a different service from the registry, so it gets its own bounds.
export const TOKEN_FETCH_TIMEOUT_MS = 15_000
export const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024
// Docker's token spec: "if omitted, a default of 60 seconds should be assumed".
export const DEFAULT_TOKEN_EXPIRES_IN_S = 60
// A token is dropped this long before it expires (at most half its lifetime) so an in-flight
// request never arrives with a token that just went stale.
export const TOKEN_EXPIRY_MARGIN_MS = 10_000
export const MAX_CACHED_TOKENS = 4096
// Registries whose auth scheme (and token realm) we have learned from a challenge.
export const MAX_KNOWN_REGISTRIES = 1024

// A 401 body is kept in memory while a token is fetched, so it can be handed back if that fails.
export const MAX_BUFFERED_ERROR_BODY_BYTES = 64 * 1024

// An origin error body (a 401's JSON, say) is read this far to hand it on; the rest is dropped.
export const MAX_STATUS_BODY_BYTES = 64 * 1024

// A blob pull: tries in all (a try after a cut asks only for the bytes not on disk yet), and the pause before each.
export const PULL_ATTEMPTS = 3
export const PULL_RETRY_BASE_DELAY_MS = 100
export const PULL_RETRY_MAX_DELAY_MS = 2_000
// The origin's body comes in ~64 KiB pieces (a socket read each); one disk append each costs ~1 ms on a busy event loop, so they are gathered up to
// this before one append (readers of the partial still see bytes within one batch).
export const PULL_BATCH_BYTES = 1024 * 1024
