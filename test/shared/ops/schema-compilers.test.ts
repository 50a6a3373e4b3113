import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { packagesLoadedBy } from '../../../harness/loaded-packages.ts'
import { lazySchemaCompilers } from '../../../shared/ops/index.ts'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

/** In a fresh process: builds an app with or without a schema route, answers one request, lists what was loaded. */
function loadedBy(withSchema: boolean): Promise<string[]> {
  const body = `
    const { default: Fastify } = await import('fastify')
    const { lazySchemaCompilers } = await import(${JSON.stringify(`file://${ROOT}shared/ops/index.ts`)})
    const app = Fastify({ schemaController: { compilersFactory: lazySchemaCompilers() } })
    app.get('/plain', async () => 'ok')
    if (${withSchema}) app.get('/q', { schema: { querystring: { type: 'object', required: ['n'] } } }, async () => 'ok')
    await app.ready()
    await app.inject('/plain')
    await app.close()
  `
  return packagesLoadedBy(body, { cwd: ROOT })
}

describe('lazySchemaCompilers', () => {
  it("leaves ajv and Fastify's schema compilers unloaded while no route declares a schema", async () => {
    const without = await loadedBy(false)
    expect(without).toContain('fastify')
    // (fast-json-stringify's runtime serializer itself is part of Fastify's error serializer: loaded either way.)
    const compilers = ['ajv', 'ajv-formats', '@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler']
    expect(without.filter((p) => compilers.includes(p))).toEqual([])
    // And loads them once a route has one.
    expect(await loadedBy(true)).toEqual(expect.arrayContaining(['ajv', '@fastify/ajv-compiler']))
  }, 60_000)

  it("gives a route with a schema Fastify's own validation and serialization", async () => {
    const app = Fastify({ schemaController: { compilersFactory: lazySchemaCompilers() } })
    app.get(
      '/q',
      {
        schema: {
          querystring: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
          response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } },
        },
      },
      async (req) => ({ n: (req.query as { n: number }).n, dropped: 'by the serializer' }),
    )
    try {
      expect((await app.inject('/q')).statusCode).toBe(400)
      const ok = await app.inject('/q?n=7')
      expect(ok.statusCode).toBe(200)
      expect(ok.json()).toEqual({ n: 7 })
    } finally {
      await app.close()
    }
  })
})
