import { describe, expect, it } from 'vitest'
import {
  defaultScope,
  InvalidUpstreamError,
  originUrl,
  parseOriginLocation,
  resolveUpstream,
  upstreamName,
} from '../../../shared/origin/index.ts'

const opts = {
  defaultOrigin: new URL('https://harbor.example/prefix/'),
  insecureRegistries: ['lab.local:5000', 'Plain.Example'],
}
const resolve = (ns: string | undefined) => {
  const u = resolveUpstream(ns, opts)
  return [u.registry, u.baseUrl.href]
}

describe('resolveUpstream', () => {
  it.each([
    [undefined, 'harbor.example', 'https://harbor.example/prefix'],
    ['docker.io', 'docker.io', 'https://registry-1.docker.io/'],
    ['index.docker.io', 'docker.io', 'https://registry-1.docker.io/'],
    ['Registry-1.Docker.IO', 'docker.io', 'https://registry-1.docker.io/'],
    ['ghcr.io', 'ghcr.io', 'https://ghcr.io/'],
    ['harbor.example', 'harbor.example', 'https://harbor.example/prefix'],
    ['lab.local:5000', 'lab.local:5000', 'http://lab.local:5000/'],
    ['plain.example', 'plain.example', 'http://plain.example/'],
    ['lab.local:5001', 'lab.local:5001', 'https://lab.local:5001/'],
    ['10.0.0.1:443', '10.0.0.1:443', 'https://10.0.0.1/'],
    ['[::1]:5000', '[::1]:5000', 'https://[::1]:5000/'],
  ])('%s → %s at %s', (ns, registry, base) => {
    expect(resolve(ns)).toEqual([registry, base])
  })

  it.each([
    '',
    'evil.com/path',
    'evil.com?x=1',
    'evil.com#x',
    'user@evil.com',
    'evil.com:99999',
    'evil.com:',
    'http://evil.com',
    'evil .com',
    '-evil.com',
    'evil..com',
    'a%2fb',
    '0x7f.1',
    'x'.repeat(300),
  ])('refuses ns %j', (ns) => {
    expect(() => resolveUpstream(ns, opts)).toThrow(InvalidUpstreamError)
    try {
      resolveUpstream(ns, opts)
    } catch (err) {
      expect((err as InvalidUpstreamError).code).toBe('NAME_INVALID')
      expect((err as InvalidUpstreamError).status).toBe(400)
    }
  })

  it('maps a Docker Hub default origin to the registry host', () => {
    const u = resolveUpstream(undefined, { defaultOrigin: new URL('https://index.docker.io'), insecureRegistries: [] })
    expect([u.registry, u.baseUrl.href]).toEqual(['docker.io', 'https://registry-1.docker.io/'])
  })

  it('refuses a default origin with credentials in it', () => {
    const defaultOrigin = new URL('https://u:p@harbor.example')
    expect(() => resolveUpstream(undefined, { defaultOrigin, insecureRegistries: [] })).toThrow(InvalidUpstreamError)
  })
})

describe('upstreamName', () => {
  const hub = resolveUpstream('docker.io', opts)
  it('puts bare Docker Hub names under library/', () => {
    expect(upstreamName(hub, 'alpine')).toBe('library/alpine')
    expect(upstreamName(hub, 'bitnami/redis')).toBe('bitnami/redis')
    expect(upstreamName(resolveUpstream('ghcr.io', opts), 'alpine')).toBe('alpine')
  })
})

describe('originUrl and parseOriginLocation', () => {
  const u = resolveUpstream(undefined, opts)
  it('builds URLs below the prefix', () => {
    expect(originUrl(u, '').href).toBe('https://harbor.example/prefix/v2/')
    expect(originUrl(u, 'a/b/blobs/uploads/', new URLSearchParams({ mount: 'sha256:1' })).href).toBe(
      'https://harbor.example/prefix/v2/a/b/blobs/uploads/?mount=sha256%3A1',
    )
  })

  it('maps an upload Location back to a path and query', () => {
    const r = parseOriginLocation(u, '/prefix/v2/a/b/blobs/uploads/u1?_state=xyz')
    expect(r?.path).toBe('a/b/blobs/uploads/u1')
    expect(r?.query.get('_state')).toBe('xyz')
    expect(parseOriginLocation(u, 'https://harbor.example/prefix/v2/a/b/blobs/uploads/u2')?.path).toBe(
      'a/b/blobs/uploads/u2',
    )
    expect(parseOriginLocation(u, 'https://s3.example/bucket/x')).toBeUndefined()
    expect(parseOriginLocation(u, '/other/v2/a')).toBeUndefined()
  })
})

describe('defaultScope', () => {
  it.each([
    ['GET', 'library/alpine/manifests/latest', '', 'repository:library/alpine:pull'],
    ['HEAD', 'a/blobs/b/blobs/sha256:1', '', 'repository:a/blobs/b:pull'],
    ['GET', 'a/b/tags/list', '', 'repository:a/b:pull'],
    ['POST', 'a/b/blobs/uploads/', '', 'repository:a/b:pull,push'],
    ['POST', 'a/b/blobs/uploads/', 'mount=sha256:1&from=c/d', 'repository:a/b:pull,push repository:c/d:pull'],
    ['PATCH', 'a/b/blobs/uploads/u1', '', 'repository:a/b:pull,push'],
    ['PUT', 'a/b/manifests/v1', '', 'repository:a/b:pull,push'],
    ['DELETE', 'a/b/manifests/sha256:1', '', 'repository:a/b:delete'],
    ['GET', '_catalog', '', 'registry:catalog:*'],
    ['GET', '', '', ''],
  ] as const)('%s %s', (method, path, query, scope) => {
    expect(defaultScope(method, path, new URLSearchParams(query))).toBe(scope)
  })
})
