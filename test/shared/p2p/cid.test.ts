import { CID } from 'multiformats/cid'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { digestOf, parseDigest } from '../../../shared/oci/digest.ts'
import { blobCid } from '../../../shared/p2p/index.ts'

const hello = new TextEncoder().encode('hello')

describe('blobCid', () => {
  it('is the CIDv1 raw-codec content address IPFS gives the same bytes', async () => {
    const cid = blobCid(digestOf(hello))
    // The well-known IPFS CID of the raw block "hello".
    expect(cid.toString()).toBe('bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq')
    expect(cid.equals(CID.createV1(0x55, await sha256.digest(hello)))).toBe(true)
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x55)
    expect(cid.multihash.code).toBe(0x12)
  })

  it('uses the sha2-512 multihash for a sha512 digest', async () => {
    const cid = blobCid(digestOf(hello, 'sha512'))
    expect(cid.multihash.code).toBe(0x13)
    expect(cid.equals(CID.createV1(0x55, await sha512.digest(hello)))).toBe(true)
  })

  it('gives different blobs different keys', () => {
    const a = blobCid(parseDigest(`sha256:${'a'.repeat(64)}`))
    const b = blobCid(parseDigest(`sha256:${'b'.repeat(64)}`))
    expect(a.equals(b)).toBe(false)
  })
})
