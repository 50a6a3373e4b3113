import { describe, expect, it } from 'vitest'
import { digestOf } from '../../../../shared/oci/index.ts'
import {
  decodeManifestRequest,
  decodeManifestResponse,
  encodeManifestRequest,
  encodeManifestResponse,
} from '../../../../shared/swarm/manifests/index.ts'
import { InvalidMessageError } from '../../../../shared/swarm/wire/index.ts'

const digest = digestOf(new Uint8Array([1]))
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o))

describe('manifest messages', () => {
  it('round-trip, with and without where the digest was resolved', () => {
    expect(decodeManifestRequest(encodeManifestRequest({ t: 'manifest', digest }))).toEqual({ t: 'manifest', digest })
    const where = { t: 'manifest', digest, registry: 'registry.example:5000', name: 'org/app' } as const
    expect(decodeManifestRequest(encodeManifestRequest(where))).toEqual(where)
    const res = { t: 'manifest', mediaType: 'application/vnd.oci.image.manifest.v1+json', length: 12 } as const
    expect(decodeManifestResponse(encodeManifestResponse(res))).toEqual(res)
  })

  it('refuses bad digests, registries, names, media types and lengths', () => {
    for (const bad of [
      { t: 'manifest', digest: 'sha256:nothex' },
      { t: 'manifest', digest, registry: 'bad host', name: 'org/app' },
      { t: 'manifest', digest, registry: 'registry.example', name: 'UPPER/case' },
      { t: 'manifest', digest, registry: 'registry.example' },
      { t: 'other', digest },
    ])
      expect(() => decodeManifestRequest(enc(bad))).toThrow(InvalidMessageError)
    for (const bad of [
      { t: 'manifest', mediaType: 'text/plain\r\nx: y', length: 1 },
      { t: 'manifest', mediaType: 'application/json', length: 4 * 1024 * 1024 + 1 },
      { t: 'manifest', mediaType: 'application/json', length: -1 },
    ])
      expect(() => decodeManifestResponse(enc(bad))).toThrow(InvalidMessageError)
  })
})
