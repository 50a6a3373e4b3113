/**
 * Default chunk size. Chunks are relayed store-and-forward (a node passes a chunk on once it has all of it and has
 * checked it), so the chunk size sets the delay per hop. 1 MiB rather than 4 MiB: on the fleet benchmark's thin
 * links (N = 8, 16 mbit/s) cold rollouts took 52.0 s instead of 72.4 s, preheated 53.8 s instead of 65.9 s
 * (bench/RESULTS.md), and the simulator gives cold p99 1.71 instead of 2.63 × the lower bound at 1,000 nodes.
 */
export const DEFAULT_CHUNK_SIZE_BYTES = 1024 * 1024
export const MIN_CHUNK_SIZE_BYTES = 64 * 1024
export const MAX_CHUNK_SIZE_BYTES = 64 * 1024 * 1024

/**
 * Default cap on chunks per map when decoding untrusted bytes: 64 GiB at the default chunk size, and at most
 * 1 MiB of chunk digests to buffer.
 */
export const DEFAULT_MAX_CHUNKS = 16 * 1024

/**
 * Domain-separation prefixes, prepended to the canonical body before signing. Neither is a prefix of the other,
 * so a signature over one kind of statement can never verify as the other kind.
 */
export const CHUNK_MAP_DOMAIN = 'shoal-chunkmap-v1\n'
export const CHUNK_ATTESTATION_DOMAIN = 'shoal-chunk-v1\n'

/** First byte of every encoded form; bumped if a layout ever changes. */
export const CHUNK_MAP_FORMAT_VERSION = 1
export const SIGNED_FORMAT_VERSION = 1

/** A base58 Ed25519 peer id is 52 characters; leave room for other embedded-key types but not for abuse. */
export const MAX_SIGNER_BYTES = 128
/** Ed25519 signatures are 64 bytes; DER ECDSA/secp256k1 ones at most 72. */
export const MAX_SIGNATURE_BYTES = 256

/** Chunks are always named by SHA-256, whatever algorithm names the blob. */
export const CHUNK_DIGEST_BYTES = 32
