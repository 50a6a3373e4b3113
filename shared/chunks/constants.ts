/** Default chunk size: big enough that per-chunk overhead is noise, small enough to spread a layer over peers. */
export const DEFAULT_CHUNK_SIZE_BYTES = 4 * 1024 * 1024
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
