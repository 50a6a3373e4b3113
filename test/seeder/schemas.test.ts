import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../shared/log/index.ts'
import { notificationRoutes } from '../../seeder/notifications.ts'
import { type Preheater, PREHEAT_BODY_LIMIT_BYTES, preheatRoutes } from '../../seeder/preheat.ts'
import { API_AJV_OPTIONS } from '../../seeder/schemas.ts'

const DIGEST = `sha256:${'c'.repeat(64)}`
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

let app: FastifyInstance | undefined
afterEach(async () => {
  await app?.close()
  app = undefined
})

/** The seeder's API routes on an app configured as the seeder's, with a recording stand-in for the preheater. */
async function api() {
  const submitted: unknown[][] = []
  const preheated: string[] = []
  const preheater = {
    submit: (...args: unknown[]) => {
      submitted.push(args)
      return { id: 'ph-1', merged: false }
    },
    get: () => undefined,
  } as unknown as Preheater
  app = Fastify({ ajv: API_AJV_OPTIONS })
  await app.register(preheatRoutes(preheater))
  await app.register(
    notificationRoutes({
      token: 't0ken',
      repositories: [],
      preheat: (image) => void preheated.push(image),
      knownRegistry: () => false,
      log: createLogger({ level: 'silent' }),
    }),
  )
  const preheat = (body: unknown) =>
    app!.inject({ method: 'POST', url: '/api/v1/preheat', payload: JSON.stringify(body), headers: json })
  const notify = (body: unknown) =>
    app!.inject({
      method: 'POST',
      url: '/api/v1/notifications',
      payload: JSON.stringify(body),
      headers: { ...json, authorization: 'Bearer t0ken' },
    })
  return { preheat, notify, submitted, preheated }
}
const json = { 'content-type': 'application/json' }

describe('preheat body schema', () => {
  it.each([
    [null, /body/],
    [[], /body/],
    [{}, /image/],
    [{ image: 5 }, /image/],
    [{ image: 'a:v1', platforms: 'linux/amd64' }, /platforms/],
    [{ image: 'a:v1', platforms: ['linux'] }, /platforms\.0/],
    [{ image: 'a:v1', platforms: Array.from({ length: 65 }, () => 'linux/amd64') }, /platforms/],
    [{ image: 'a:v1', scope: { agents: '2' } }, /scope\.agents/],
    [{ image: 'a:v1', scope: { agents: 1.5 } }, /scope\.agents/],
    [{ image: 'a:v1', scope: { agents: 1001 } }, /scope\.agents/],
    [{ image: 'a:v1', scope: 3 }, /scope/],
    [{ image: 'a:v1', scope: { sites: ['store-17'] } }, /scope\.sites/],
    [{ image: 'a:v1', scope: { sites: { 'store-17': '2' } } }, /scope\.sites\.store-17/],
    [{ image: 'a:v1', scope: { sites: { 'store-17': 1.5 } } }, /scope\.sites\.store-17/],
    [{ image: 'a:v1', scope: { sites: { 'store-17': -1 } } }, /scope\.sites\.store-17/],
    [{ image: 'a:v1', scope: { sites: { 'store-17': 1001 } } }, /scope\.sites\.store-17/],
    [{ image: 'a:v1', scope: { sites: { 'bad site-hidden': 1 } } }, /scope\.sites: a key is not a site name/],
    [{ image: 'a:v1', scope: { sites: { ['x'.repeat(64)]: 1 } } }, /scope\.sites/],
    [
      { image: 'a:v1', scope: { sites: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`s${i}`, 1])) } },
      /scope\.sites/,
    ],
    [{ image: 'a:v1', scope: { agents: 1, sites: { s: 'x' } } }, /scope\.sites\.s/],
    [{ image: 'a:v1', credentials: 'alice:pw-hidden' }, /credentials/],
    [{ image: 'a:v1', credentials: { username: 'alice' } }, /credentials/],
    [{ image: 'a:v1', credentials: { username: 'a:b', password: 'pw-hidden' } }, /credentials\.username/],
    [{ image: 'a:v1', credentials: { token: 'two words-hidden' } }, /credentials\.token/],
    [{ image: 'a:v1', credentials: { token: 't-hidden', username: 'u', password: 'p-hidden' } }, /credentials/],
    [{ image: 'a:v1', credentials: { username: 'u', password: 'line\nbreak-hidden' } }, /credentials\.password/],
  ])('refuses %j with 400 { error } naming the field, never its value', async (body, field) => {
    const { preheat, submitted } = await api()
    const res = await preheat(body)
    expect(res.statusCode).toBe(400)
    const error = (res.json() as { error?: unknown }).error
    expect(typeof error).toBe('string')
    expect(error).toMatch(field)
    expect(res.body).not.toContain('hidden')
    expect(submitted).toEqual([])
  })

  it('accepts a valid body, fields it does not know included, and hands the handler typed values', async () => {
    const { preheat, submitted } = await api()
    const body = {
      image: 'r.io/a:v1',
      platforms: ['linux/amd64'],
      credentials: { token: 'abc' },
      scope: { agents: 2 },
      comment: 'from CI',
    }
    const res = await preheat(body)
    expect(res.statusCode).toBe(202)
    expect(res.json()).toEqual({ id: 'ph-1', merged: false })
    expect(submitted).toEqual([['r.io/a:v1', ['linux/amd64'], { credentials: { token: 'abc' }, scope: { agents: 2 } }]])
  })

  it('accepts copies per site beside agents, or alone', async () => {
    const { preheat, submitted } = await api()
    for (const scope of [{ sites: { 'store-17': 2, 'eu-west-1a': 0 } }, { agents: 1, sites: { 'store.17_b': 1 } }]) {
      const res = await preheat({ image: 'r.io/a:v1', scope })
      expect(res.statusCode).toBe(202)
    }
    expect(submitted.map((s) => (s[2] as { scope: unknown }).scope)).toEqual([
      { sites: { 'store-17': 2, 'eu-west-1a': 0 } },
      { agents: 1, sites: { 'store.17_b': 1 } },
    ])
  })

  it('answers 413 over 64 KiB', async () => {
    const { preheat } = await api()
    const res = await preheat({ image: 'a:v1', pad: 'x'.repeat(PREHEAT_BODY_LIMIT_BYTES) })
    expect(res.statusCode).toBe(413)
  })
})

describe('notification body schema', () => {
  it.each([
    [[], /body/],
    [{ events: 'x' }, /events/],
    [{ events: [{ action: 'push', target: {} }] }, /events\.0\.target/],
    [{ events: [{ action: 7, target: {} }] }, /events\.0\.action/],
    [{ events: ['x'] }, /events\.0/],
    [{ type: 'PUSH_ARTIFACT', event_data: { resources: 'x' } }, /event_data\.resources/],
    [{ hello: 'world' }, /body/],
  ])('refuses %j with 400 { error }', async (body, field) => {
    const { notify, preheated } = await api()
    const res = await notify(body)
    expect(res.statusCode).toBe(400)
    expect((res.json() as { error: string }).error).toMatch(field)
    expect(preheated).toEqual([])
  })

  it('accepts fields it does not know at every level, from either registry', async () => {
    const { notify, preheated } = await api()
    const distribution = {
      events: [
        {
          id: 'e1',
          timestamp: '2026-01-01T00:00:00Z',
          action: 'push',
          target: { mediaType: MANIFEST, digest: DIGEST, repository: 'team/app', size: 10, tag: 'v1', extra: {} },
          request: { host: 'r.io', useragent: 'x' },
          actor: {},
          source: { addr: 'r:5000' },
        },
        { action: 'pull', target: { anything: true } },
      ],
      envelopeExtra: 1,
    }
    const res = await notify(distribution)
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 1 })
    const harbor = {
      type: 'PUSH_ARTIFACT',
      occur_at: 1,
      operator: 'ci',
      event_data: {
        resources: [{ digest: `sha256:${'d'.repeat(64)}`, tag: 'v2', resource_url: 'x' }],
        repository: { name: 'app', namespace: 'lib', repo_full_name: 'lib/app', repo_type: 'private' },
        custom: {},
      },
    }
    expect((await notify(harbor)).json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 })
    expect((await notify({ type: 'DELETE_ARTIFACT', event_data: null })).json()).toEqual({
      accepted: 0,
      duplicates: 0,
      ignored: 1,
    })
    expect(preheated).toEqual([`team/app@${DIGEST}`, `lib/app@sha256:${'d'.repeat(64)}`])
  })
})
