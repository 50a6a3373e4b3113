import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pullImage } from '../../shared/sample/pull.ts'
import type { CliIo } from '../../cli/io.ts'
import { preheatMain } from '../../cli/preheat.ts'
import { statusMain } from '../../cli/status.ts'
import type { PreheatJobView } from '../../seeder/preheat.ts'
import { type Fleet, startFleet } from '../../harness/fleet.ts'

let fleet: Fleet
beforeAll(async () => {
  fleet = await startFleet({ agents: 2, layers: 3, layerBytes: 1024 * 1024 })
}, 60_000)
afterAll(async () => {
  await fleet?.stop()
})

async function post(body: unknown, raw?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${fleet.seeder.apiUrl}/api/v1/preheat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

/** Polls the job over HTTP (that is the API under test) until it is finished. */
async function waitJob(id: string): Promise<PreheatJobView> {
  for (;;) {
    const res = await fetch(`${fleet.seeder.apiUrl}/api/v1/preheat/${id}`)
    expect(res.status).toBe(200)
    const job = (await res.json()) as PreheatJobView
    if (job.state === 'done' || job.state === 'failed') return job
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('preheat on the seeder', () => {
  it('pulls every blob from the origin before any agent asks; agents then cost the origin nothing', async () => {
    const host = new URL(fleet.origin.url).host
    const first = await post({ image: `${host}/demo/app:v1` })
    expect(first.status).toBe(202)
    // Same reference while the first is queued or running: merged into it.
    const again = await post({ image: 'demo/app:v1' })
    expect(again.json['id']).toBe(first.json['id'])
    const job = await waitJob(first.json['id'] as string)
    expect(job.state).toBe('done')
    expect(job.image).toBe(`${host}/demo/app:v1`)
    const blobs = fleet.image.blobs
    expect(job.layers.map((l) => l.digest).sort()).toEqual(blobs.map((b) => b.digest).sort())
    for (const l of job.layers) expect(l.bytes).toBe(l.size)
    for (const b of blobs) expect(fleet.origin.stats.perBlob.get(b.digest)?.requests).toBe(1)
    const served = fleet.origin.stats.blobBytesServed

    const results = await Promise.all(fleet.agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    for (const r of results) expect(r.blobBytes).toBe(blobs.reduce((n, b) => n + b.size, 0))
    // Counted at the origin: the preheat was its only blob egress.
    for (const b of blobs) expect(fleet.origin.stats.perBlob.get(b.digest)?.requests).toBe(1)
    expect(fleet.origin.stats.blobBytesServed).toBe(served)

    // A finished job is not merged: a new one runs and finds everything already here.
    const later = await post({ image: `demo/app@${fleet.image.root.digest}` })
    expect(later.json['id']).not.toBe(first.json['id'])
    expect((await waitJob(later.json['id'] as string)).state).toBe('done')
    expect(fleet.origin.stats.blobBytesServed).toBe(served)
  }, 60_000)

  it('fails an unknown image with the origin status, not a crash', async () => {
    const { status, json } = await post({ image: 'demo/nope:v1' })
    expect(status).toBe(202)
    const job = await waitJob(json['id'] as string)
    expect(job.state).toBe('failed')
    expect(job.originStatus).toBe(404)
    expect(job.error).toMatch(/404/)
    const health = await fetch(`${fleet.seeder.apiUrl}/healthz`)
    expect(health.status).toBe(200)
  })

  it('refuses bad input with 400 and a reason, and oversized bodies', async () => {
    for (const body of [
      {},
      { image: 42 },
      { image: 'Demo/App:v1' },
      { image: 'demo/app@sha256:abc' },
      { image: 'demo/app:v1', platforms: 'linux/amd64' },
      { image: 'demo/app:v1', platforms: ['linux'] },
      { image: 'elsewhere.example:5000/demo/app:v1' },
      [1, 2],
    ]) {
      const r = await post(body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(typeof r.json['error']).toBe('string')
    }
    expect((await post(undefined, '{not json')).status).toBe(400)
    expect((await post(undefined, JSON.stringify({ image: 'x'.repeat(70 * 1024) }))).status).toBe(413)
    const missing = await fetch(`${fleet.seeder.apiUrl}/api/v1/preheat/ph-none`)
    expect(missing.status).toBe(404)
  })
})

function captureIo(isTTY: boolean): CliIo & { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return {
    stdout: { isTTY, write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    out: () => out,
    err: () => err,
  }
}

describe('shoal preheat and shoal status', () => {
  it('follows a job to done (plain lines, then bars on a TTY), 1 on failure, 2 on bad usage', async () => {
    const url = fleet.seeder.apiUrl
    const plain = captureIo(false)
    expect(await preheatMain(['--seeder', url, 'demo/app:v1'], plain, { pollMs: 10 })).toBe(0)
    for (const b of fleet.image.blobs) expect(plain.out()).toContain(`${b.digest} `)
    expect(plain.out()).toMatch(/preheated .*demo\/app:v1: 4 blobs/)
    expect(plain.out()).not.toContain('\x1b[')

    const tty = captureIo(true)
    expect(await preheatMain([`--seeder=${url}`, 'demo/app:v1'], tty, { pollMs: 10 })).toBe(0)
    expect(tty.out()).toContain('\x1b[2K')
    expect(tty.out()).toContain(`[${'#'.repeat(30)}]`)

    const failed = captureIo(false)
    expect(await preheatMain(['--seeder', url, 'demo/nope:v1'], failed, { pollMs: 10 })).toBe(1)
    expect(failed.err()).toMatch(/failed: origin answered 404/)

    for (const argv of [
      ['demo/app:v1'],
      ['--seeder', url],
      ['--seeder', 'nope', 'x'],
      ['--bogus', 'x', 'a'],
      ['--seeder', url, 'Bad/Name'],
    ]) {
      const io = captureIo(false)
      expect(await preheatMain(argv, io), argv.join(' ')).toBe(2)
      expect(io.err()).not.toBe('')
    }
  })

  it('prints a readable summary of an agent and of the seeder', async () => {
    const agent = captureIo(false)
    expect(await statusMain(['--agent', fleet.agents[0]!.url], agent)).toBe(0)
    expect(agent.out()).toMatch(/^agent http:\/\/127\.0\.0\.1:\d+\n/)
    expect(agent.out()).toMatch(/peers +\d+/)
    expect(agent.out()).toMatch(/cache +[\d.]+ \w*B in \d+ blobs/)
    const seeder = captureIo(false)
    expect(await statusMain(['--seeder', fleet.seeder.apiUrl], seeder)).toBe(0)
    expect(seeder.out()).toMatch(/^seeder /)
    expect(seeder.out()).toMatch(/bytes in +origin [\d.]+ MiB/)
    expect(await statusMain(['--agent', fleet.agents[0]!.url, '--seeder', fleet.seeder.apiUrl], captureIo(false))).toBe(
      2,
    )
    expect(await statusMain(['--agent', 'http://127.0.0.1:1'], captureIo(false))).toBe(1)
  })
})
