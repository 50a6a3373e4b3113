import { describe, expect, it } from 'vitest'
import { accepts, DOCKER_MANIFEST, manifestMediaType, OCI_INDEX, OCI_MANIFEST } from '../../../shared/oci/index.ts'

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o))

describe('manifestMediaType', () => {
  it('prefers a manifest Content-Type from the origin', () => {
    expect(manifestMediaType(enc({ schemaVersion: 2 }), `${DOCKER_MANIFEST}; charset=utf-8`)).toBe(DOCKER_MANIFEST)
  })
  it('falls back to the document field, then its shape', () => {
    expect(manifestMediaType(enc({ mediaType: OCI_INDEX, manifests: [] }), 'application/json')).toBe(OCI_INDEX)
    expect(manifestMediaType(enc({ schemaVersion: 2, manifests: [] }), undefined)).toBe(OCI_INDEX)
    expect(manifestMediaType(enc({ schemaVersion: 2, config: {}, layers: [] }), 'application/json')).toBe(OCI_MANIFEST)
  })
})

describe('accepts', () => {
  it('matches listed types and wildcards', () => {
    expect(accepts(undefined, OCI_INDEX)).toBe(true)
    expect(accepts(`${OCI_MANIFEST}, ${DOCKER_MANIFEST}`, OCI_INDEX)).toBe(false)
    expect(accepts(`${OCI_MANIFEST};q=0.9, */*;q=0.1`, OCI_INDEX)).toBe(true)
  })
})
