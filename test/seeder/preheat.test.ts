import { afterEach, describe, expect, it } from 'vitest'
import { InvalidPreheatRequestError, parseImageReference } from '../../seeder/preheat.ts'
import { platformBlobs, type SeederRig, startSeederRig, waitJob } from './seeder-harness.ts'

let rig: SeederRig | undefined
afterEach(async () => {
  await rig?.stop()
  rig = undefined
})

describe('parseImageReference', () => {
  it('splits registry, name and tag or digest like docker does', () => {
    const d = `sha256:${'a'.repeat(64)}`
    expect(parseImageReference('demo/app:v1')).toEqual({ registry: undefined, name: 'demo/app', reference: 'v1' })
    expect(parseImageReference('app')).toEqual({ registry: undefined, name: 'app', reference: 'latest' })
    expect(parseImageReference('reg.example:5000/a/b:t')).toEqual({
      registry: 'reg.example:5000',
      name: 'a/b',
      reference: 't',
    })
    expect(parseImageReference(`localhost/a@${d}`)).toEqual({ registry: 'localhost', name: 'a', reference: d })
    expect(parseImageReference(`r.io/a:t@${d}`)).toEqual({ registry: 'r.io', name: 'a', reference: d })
    for (const bad of ['', 'A/b', 'a/b:', 'a@sha256:12', 'r.io/:t', 'a/b:bad tag'])
      expect(() => parseImageReference(bad), bad).toThrow(InvalidPreheatRequestError)
  })
})

describe('preheat of a multi-platform index', () => {
  it('pulls only the chosen platform', async () => {
    rig = await startSeederRig()
    const { id } = rig.seeder.preheater.submit('demo/multi:v1', ['linux/arm64'])
    const job = await waitJob(rig, id)
    expect(job.state).toBe('done')
    const arm = platformBlobs(rig.image, 'arm64')
    const amd = platformBlobs(rig.image, 'amd64')
    expect(job.layers.map((l) => l.digest).sort()).toEqual([...arm].sort())
    for (const d of arm) expect(rig.origin.stats.perBlob.get(d)?.requests).toBe(1)
    for (const d of amd) expect(rig.origin.stats.perBlob.get(d)).toBeUndefined()
    // What a preheat seeded is held for --preheat-ttl (24 h by default).
    expect(
      rig.seeder.retention
        .held()
        .map((h) => h.digest)
        .sort(),
    ).toEqual([...arm].sort())
  })

  it('pulls every platform by default, and fails a platform the index lacks', async () => {
    rig = await startSeederRig()
    const all = await waitJob(rig, rig.seeder.preheater.submit(`demo/multi@${rig.image.root.digest}`).id)
    expect(all.state).toBe('done')
    expect(all.layers).toHaveLength(rig.image.blobs.length)
    for (const b of rig.image.blobs) expect(rig.origin.stats.perBlob.get(b.digest)?.requests).toBe(1)
    const missing = await waitJob(rig, rig.seeder.preheater.submit('demo/multi:v1', ['linux/s390x']).id)
    expect(missing.state).toBe('failed')
    expect(missing.error).toMatch(/linux\/s390x/)
  })

  it('reports bytes per layer while they arrive, never going back', async () => {
    // A slow origin link, so the job is observed mid-blob.
    rig = await startSeederRig({ seederArgs: ['--origin-rate', '512KiB'] })
    const { id } = rig.seeder.preheater.submit('demo/multi:v1', ['linux/amd64'])
    const last = new Map<string, number>()
    let partial = false
    for (;;) {
      const job = rig.seeder.preheater.get(id)!
      for (const l of job.layers) {
        expect(l.bytes).toBeGreaterThanOrEqual(last.get(l.digest) ?? 0)
        last.set(l.digest, l.bytes)
        if (l.bytes > 0 && l.bytes < l.size) partial = true
      }
      if (job.state === 'done' || job.state === 'failed') {
        expect(job.state).toBe('done')
        break
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    expect(partial).toBe(true)
  })
})
