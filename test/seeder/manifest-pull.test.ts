/** The seeder's pull of a manifest for the swarm: once however many ask, kept only when it matches its digest. */
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { manifestPull } from '../../seeder/manifest-pull.ts'
import { digestOf, OCI_MANIFEST } from '../../shared/oci/index.ts'
import type { OriginRequest, Upstream } from '../../shared/origin/index.ts'
import { MemoryManifestCache } from '../../shared/store/index.ts'

const upstream: Upstream = { registry: 'origin.test', baseUrl: new URL('http://origin.test') }
const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }))
const digest = digestOf(body)

function origin(bytes: Buffer) {
  const seen: OriginRequest[] = []
  return {
    seen,
    request: async (_u: Upstream, req: OriginRequest) => {
      seen.push(req)
      await new Promise((r) => setTimeout(r, 20))
      return { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: Readable.from([bytes]) } as never
    },
  }
}

describe('manifestPull', () => {
  it('pulls once for concurrent asks, by digest, and keeps the verified bytes', async () => {
    const o = origin(body)
    const cache = new MemoryManifestCache()
    const pull = manifestPull({ origin: o, upstreamFor: (r) => (r === 'origin.test' ? upstream : undefined), cache })
    await Promise.all([pull(digest, 'origin.test', 'demo/app'), pull(digest, 'origin.test', 'demo/app')])
    expect(o.seen.map((r) => `${r.method} ${r.path}`)).toEqual([`GET demo/app/manifests/${digest}`])
    expect((await cache.getManifest(digest))?.mediaType).toBe(OCI_MANIFEST)
    // Held now: no second pull.
    await pull(digest, 'origin.test', 'demo/app')
    expect(o.seen).toHaveLength(1)
  })

  it('keeps nothing when the bytes do not match the digest, and refuses a registry it does not pull from', async () => {
    const o = origin(Buffer.from('{"other":true}'))
    const cache = new MemoryManifestCache()
    const pull = manifestPull({ origin: o, upstreamFor: (r) => (r === 'origin.test' ? upstream : undefined), cache })
    await expect(pull(digest, 'origin.test', 'demo/app')).rejects.toThrow(/does not match/)
    expect(await cache.getManifest(digest)).toBeUndefined()
    await expect(pull(digest, 'elsewhere.test', 'demo/app')).rejects.toThrow(/not pulling/)
    expect(o.seen).toHaveLength(1)
  })
})
