import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { checkStore, openFsStore } from '../../shared/store/index.ts'
import { imageManifest, spawnShoal, startCrashOrigin, type TestBlob, testBlob } from './crash-harness.ts'

// The seeder picks up partial origin pulls a crash left in its data dir: the prefix is kept, only the rest is
// asked of the origin, and a partial holding every byte needs no origin request at all.
const MiB = 1024 * 1024
const CHUNK = 64 * 1024
const NAME = 'resume/seed'

let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

/** Leaves `blob`'s first `bytes` bytes as an uncommitted partial, as a SIGKILL after those appends would. */
async function leavePartial(data: string, blob: TestBlob, bytes: number): Promise<void> {
  const store = await openFsStore({ dir: data })
  const partial = await store.blobs.openPartial(blob.digest, { size: blob.bytes.byteLength, chunkSize: CHUNK })
  await partial.append(blob.bytes.subarray(0, bytes))
  await store.stop()
}

describe('a seeder restarted on a data dir with partial pulls', () => {
  it('asks the origin for the rest only, and nothing for a partial that holds every byte', async () => {
    const config = testBlob(1234, 'resume-config')
    const half = testBlob(2 * MiB + 4321, 'resume-half')
    const full = testBlob(1 * MiB + 99, 'resume-full')
    const fresh = testBlob(1 * MiB + 7, 'resume-fresh')
    const layers = [half, full, fresh]
    const origin = await startCrashOrigin({
      repos: new Map([[NAME, [config, ...layers]]]),
      manifests: new Map([[`${NAME}:v1`, imageManifest(config, layers)]]),
      bytesPerSecond: 64 * MiB,
    })
    cleanup.push(() => origin.close())
    const dir = await mkdtemp(join(tmpdir(), 'shoal-seeder-resume-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    const data = join(dir, 'seeder')
    const cut = 17 * CHUNK + 1000
    await leavePartial(data, half, cut)
    await leavePartial(data, full, full.bytes.byteLength)

    const seeder = await spawnShoal('seeder', [
      ...['--origin', origin.url, '--data', data, '--chunk-size', '64KiB'],
      ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--api-listen', '127.0.0.1:0'],
    ])
    cleanup.push(async () => {
      if (seeder.child.exitCode === null) await seeder.kill()
    })
    const res = await request(`${seeder.url}/api/v1/preheat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: `${NAME}:v1` }),
    })
    expect(res.statusCode).toBe(202)
    const { id } = (await res.body.json()) as { id: string }
    // Another process's job: nothing to await but its status.
    let state = ''
    while (state !== 'done' && state !== 'failed') {
      await delay(50)
      state = ((await (await request(`${seeder.url}/api/v1/preheat/${id}`)).body.json()) as { state: string }).state
    }
    expect(state).toBe('done')
    expect(await seeder.stop()).toBe(0)

    const gets = (blob: TestBlob) => origin.requests.filter((r) => r.digest === blob.digest)
    expect(gets(half).map((r) => [r.start, r.ranged])).toEqual([[cut, true]])
    expect(gets(full)).toEqual([])
    expect(gets(fresh).map((r) => [r.start, r.ranged])).toEqual([[0, false]])
    const check = await checkStore(data, { mode: 'reconciled', hash: true })
    expect(check.problems).toEqual([])
    expect([...check.blobs.keys()].sort()).toEqual([config, ...layers].map((b) => b.digest).sort())
    expect(check.partials).toEqual([])
  })
})
