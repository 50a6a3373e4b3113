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

describe('parseV2Path with registryPrefix', () => {
  const prefix = { registryPrefix: true }
  it.each([
    ['/v2/ghcr.io/org/app/manifests/1', { kind: 'manifest', registry: 'ghcr.io', name: 'org/app' }],
    [`/v2/docker.io/alpine/blobs/${D}`, { kind: 'blob', registry: 'docker.io', name: 'alpine' }],
    ['/v2/localhost/team/app/tags/list', { kind: 'tags', registry: 'localhost', name: 'team/app' }],
    // an image reference cannot hold `:` in its path: the port is written `__`
    ['/v2/127.0.0.1__5001/team/app/manifests/v1', { kind: 'manifest', registry: '127.0.0.1:5001', name: 'team/app' }],
    ['/v2/localhost__5000/app/blobs/uploads/', { kind: 'upload', registry: 'localhost:5000', name: 'app' }],
    // a hand-written request may carry the colon itself
    ['/v2/registry.example:8443/a/manifests/v1', { kind: 'manifest', registry: 'registry.example:8443', name: 'a' }],
    // only the first component is read: the name may have dots further on
    ['/v2/quay.io/my.team/app.web/manifests/v1', { kind: 'manifest', registry: 'quay.io', name: 'my.team/app.web' }],
  ])('reads the upstream from %s', (path, want) => {
    expect(parseV2Path(path, prefix)).toMatchObject(want)
  })

  it.each([
    ['/v2/library/alpine/manifests/latest', 'library/alpine'],
    ['/v2/alpine/manifests/latest', 'alpine'],
    ['/v2/my-org/app/manifests/latest', 'my-org/app'],
    // a host-like name with nothing after it is a repository, not a prefix
    ['/v2/ghcr.io/manifests/latest', 'ghcr.io'],
    // `__` inside a name that does not decode to a host stays a name
    ['/v2/my__repo/app/manifests/latest', 'my__repo/app'],
  ])('leaves %s to the default upstream', (path, name) => {
    const route = parseV2Path(path, prefix)
    expect(route).toMatchObject({ name })
    expect('registry' in route).toBe(false)
  })

  it('reads the whole path as the name without the option (the request had ?ns=)', () => {
    expect(parseV2Path('/v2/my.team/app/manifests/v1')).toEqual({
      kind: 'manifest',
      name: 'my.team/app',
      reference: { kind: 'tag', tag: 'v1' },
    })
    expect(() => parseV2Path('/v2/127.0.0.1:5001/app/manifests/v1')).toThrow(RegistryError)
  })

  it('still validates the name after the prefix', () => {
    expect(() => parseV2Path('/v2/ghcr.io/Org/app/manifests/1', prefix)).toThrow(RegistryError)
    expect(() => parseV2Path('/v2/ghcr.io/../app/manifests/1', prefix)).toThrow(RegistryError)
    expect(() => parseV2Path('/v2/ghcr.io:99999999/app/manifests/1', prefix)).toThrow(RegistryError)
  })
})
