import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { type Rig, startRig } from './harness.ts'

let rig: Rig | undefined
afterEach(async () => {
  await rig?.stop()
  rig = undefined
})

describe('a blob larger than the whole cache', () => {
  it('is refused with 507 and an OCI error body; what the cache holds is still served', async () => {
    // Quota 300 KiB: the config blob fits, a 512 KiB layer cannot, whatever is evicted.
    rig = await startRig({ layers: 1, layerBytes: 512 * 1024, extraArgs: ['--cache-max-bytes', '300KiB'] })
    const [small, large] = [...rig.image.blobs].sort((a, b) => a.size - b.size)
    expect(large!.size).toBeGreaterThan(300 * 1024)
    const url = (digest: string) => `${rig!.agent.url}/v2/demo/app/blobs/${digest}`
    const cached = await request(url(small!.digest))
    expect(cached.statusCode).toBe(200)
    await cached.body.arrayBuffer()

    const res = await request(url(large!.digest))
    const body = (await res.body.json()) as { errors: { code: string; message: string }[] }

    expect(res.statusCode).toBe(507)
    expect(res.headers['content-type']).toMatch(/application\/json/)
    expect(body.errors[0]).toMatchObject({ code: 'UNAVAILABLE' })
    const again = await request(url(small!.digest))
    expect(again.statusCode).toBe(200)
    expect(Buffer.from(await again.body.arrayBuffer()).byteLength).toBe(small!.size)
  })
})
