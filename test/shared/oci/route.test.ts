import { describe, expect, it } from 'vitest'
import { parseV2Path, RegistryError } from '../../../shared/oci/index.ts'

const D = `sha256:${'a'.repeat(64)}`

describe('parseV2Path', () => {
  it.each([
    ['/v2/', { kind: 'base' }],
    ['/v2', { kind: 'base' }],
    ['/v2/_catalog', { kind: 'catalog' }],
    ['/v2/library/alpine/tags/list', { kind: 'tags', name: 'library/alpine' }],
    ['/v2/alpine/manifests/latest', { kind: 'manifest', name: 'alpine', reference: { kind: 'tag', tag: 'latest' } }],
    [`/v2/a/b/c/manifests/${D}`, { kind: 'manifest', name: 'a/b/c', reference: { kind: 'digest', digest: D } }],
    [`/v2/my-org/app.web/blobs/${D}`, { kind: 'blob', name: 'my-org/app.web', digest: D }],
    ['/v2/app/blobs/uploads/', { kind: 'upload', name: 'app', rest: '' }],
    ['/v2/app/blobs/uploads/abc-123', { kind: 'upload', name: 'app', rest: 'abc-123' }],
    // a repository may itself contain a component named like a keyword
    [`/v2/blobs/manifests/blobs/${D}`, { kind: 'blob', name: 'blobs/manifests', digest: D }],
  ])('parses %s', (path, want) => {
    expect(parseV2Path(path)).toEqual(want)
  })

  it.each([
    ['/v2/../etc/passwd/manifests/latest', 'NAME_INVALID'],
    ['/v2/a/%2e%2e/manifests/latest', 'NAME_INVALID'],
    ['/v2/a%2Fb/manifests/latest', 'NAME_INVALID'],
    ['/v2/UPPER/manifests/latest', 'NAME_INVALID'],
    ['/v2//x/manifests/latest', 'NAME_INVALID'],
    ['/v2/a/blobs/sha256:xyz', 'DIGEST_INVALID'],
    [`/v2/a/blobs/sha256:${'A'.repeat(64)}`, 'DIGEST_INVALID'],
    ['/v2/a/manifests/sha256:abc', 'DIGEST_INVALID'],
    ['/v2/a/manifests/-bad', 'MANIFEST_INVALID'],
    ['/v2/a/unknown/thing', 'NAME_UNKNOWN'],
    ['/v3/a/manifests/latest', 'NAME_UNKNOWN'],
    [`/v2/${'a'.repeat(300)}/manifests/latest`, 'NAME_INVALID'],
  ])('rejects %s with %s', (path, code) => {
    let caught: unknown
    try {
      parseV2Path(path)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(RegistryError)
    expect((caught as RegistryError).code).toBe(code)
  })
})
