import { CID } from 'multiformats/cid'
import { create as createMultihash } from 'multiformats/hashes/digest'
import { type Digest, digestAlgorithm, digestHex } from '../oci/digest.ts'

/** multicodec codes (https://github.com/multiformats/multicodec/blob/master/table.csv). */
const RAW_CODEC = 0x55
const MULTIHASH_CODE = { sha256: 0x12, sha512: 0x13 } as const

/**
 * The DHT key of a blob: its OCI digest read as a CIDv1 (raw codec). The digest already is the hash of the
 * blob's bytes, so the CID names exactly the same content and any IPFS tool can read it.
 */
export function blobCid(digest: Digest): CID {
  const hash = Buffer.from(digestHex(digest), 'hex')
  return CID.createV1(RAW_CODEC, createMultihash(MULTIHASH_CODE[digestAlgorithm(digest)], hash))
}
