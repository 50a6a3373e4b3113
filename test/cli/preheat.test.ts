import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { CliIo } from '../../cli/io.ts'
import { preheatMain } from '../../cli/preheat.ts'

let dir: string | undefined
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

function io(): CliIo & { out: () => string; err: () => string; posted: unknown[] } {
  let out = ''
  let err = ''
  const posted: unknown[] = []
  const job = {
    id: 'ph-1',
    image: 'r.io/a:v1',
    platforms: [],
    state: 'done',
    layers: [{ digest: `sha256:${'a'.repeat(64)}`, size: 10, bytes: 10 }],
    scope: { agents: 2 },
    agents: { asked: 3, accepted: 2, complete: 2, errors: ['x: busy'] },
  }
  const fake = (async (_url: string, init?: RequestInit) => {
    if (init?.method === 'POST') {
      posted.push(JSON.parse(String(init.body)))
      return new Response(JSON.stringify({ id: 'ph-1', merged: false }), { status: 202 })
    }
    return new Response(JSON.stringify(job), { status: 200 })
  }) as typeof fetch
  return {
    stdout: { isTTY: false, write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    fetch: fake,
    out: () => out,
    err: () => err,
    posted,
  }
}

describe('shoal preheat flags', () => {
  it('sends --agents as the scope and --auth-file as credentials, never printing them', async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-cli-'))
    const file = join(dir, 'auth.json')
    await writeFile(file, JSON.stringify({ username: 'ci', password: 'pw-do-not-print' }))
    const x = io()
    const argv = ['--seeder', 'http://s:7000', 'r.io/a:v1', '--agents', '2', '--auth-file', file]
    expect(await preheatMain(argv, x, { pollMs: 1 })).toBe(0)
    expect(x.posted).toEqual([
      { image: 'r.io/a:v1', scope: { agents: 2 }, credentials: { username: 'ci', password: 'pw-do-not-print' } },
    ])
    expect(x.out()).toContain('agents: 2/2 accepted, 2 complete, 1 refused or failed')
    expect(x.out() + x.err()).not.toContain('pw-do-not-print')
  })

  it('refuses a bad --agents or an unreadable --auth-file without echoing its contents', async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-cli-'))
    const bad = join(dir, 'bad')
    await writeFile(bad, 'user:pw-do-not-print')
    for (const argv of [
      ['--seeder', 'http://s:7000', 'a:v1', '--agents', 'many'],
      ['--seeder', 'http://s:7000', 'a:v1', '--agents', '-1'],
      ['--seeder', 'http://s:7000', 'a:v1', '--auth-file', join(dir, 'missing')],
      ['--seeder', 'http://s:7000', 'a:v1', '--auth-file', bad],
    ]) {
      const x = io()
      expect(await preheatMain(argv, x), argv.join(' ')).toBe(2)
      expect(x.posted).toEqual([])
      expect(x.err()).toMatch(/--agents|--auth-file/)
      expect(x.err()).not.toContain('pw-do-not-print')
    }
  })
})

describe('shoal preheat --site-copies', () => {
  it('sends copies per site as scope.sites, beside --agents or alone', async () => {
    const x = io()
    const argv = ['--seeder', 'http://s:7000', 'r.io/a:v1', '--site-copies', 'store-17=2', '--site-copies', 'b=1,c=0']
    expect(await preheatMain(argv, x, { pollMs: 1 })).toBe(0)
    expect(x.posted).toEqual([{ image: 'r.io/a:v1', scope: { sites: { 'store-17': 2, b: 1, c: 0 } } }])
    const both = io()
    await preheatMain(['--seeder', 'http://s:7000', 'r.io/a:v1', '--agents', '3', '--site-copies', 's=1'], both, {
      pollMs: 1,
    })
    expect(both.posted).toEqual([{ image: 'r.io/a:v1', scope: { agents: 3, sites: { s: 1 } } }])
  })

  it('refuses a malformed --site-copies before sending anything', async () => {
    for (const v of ['store-17', 'store-17=', '=2', 'store-17=two', 'store-17=-1', 'a=1,a=2', 'a b=1']) {
      const x = io()
      expect(await preheatMain(['--seeder', 'http://s:7000', 'a:v1', '--site-copies', v], x), v).toBe(2)
      expect(x.posted).toEqual([])
      expect(x.err()).toContain('--site-copies')
    }
  })

  it('shows each site copies held', async () => {
    const base = io()
    const view = {
      id: 'ph-1',
      image: 'r.io/a:v1',
      platforms: [],
      state: 'done',
      layers: [],
      scope: { agents: 0, sites: { 'store-17': 2 } },
      agents: {
        asked: 2,
        accepted: 2,
        complete: 2,
        errors: [],
        sites: { 'store-17': { wanted: 2, accepted: 2, complete: 2 } },
      },
    }
    const x = {
      ...base,
      fetch: (async (_u: string, init?: RequestInit) =>
        init?.method === 'POST'
          ? new Response(JSON.stringify({ id: 'ph-1', merged: false }), { status: 202 })
          : new Response(JSON.stringify(view), { status: 200 })) as typeof fetch,
    }
    expect(
      await preheatMain(['--seeder', 'http://s:7000', 'r.io/a:v1', '--site-copies', 'store-17=2'], x, { pollMs: 1 }),
    ).toBe(0)
    expect(x.out()).toContain('agents: 2/2 accepted, 2 complete; sites: store-17 2/2 held')
  })
})
