import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify'
import type { Logger } from '../log/index.ts'
import type { Metrics } from '../metrics/index.ts'
import { lazySchemaCompilers } from './schema-compilers.ts'

/** The status page: static files read once, no build step. */
const UI_FILES = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
} as const

export interface OpsInit {
  readonly metrics: Metrics
  /** undefined when ready, else the reason it is not (answered with 503). */
  readonly notReady: () => string | undefined
  /**
   * JSON for GET /status and the status page. Reachable by anyone who reaches the listener (host-network pods
   * are reachable by the whole node network): digests, sizes and counts only, never a repository name.
   */
  readonly status: () => unknown
}

/** `/healthz`, `/readyz`, `/metrics`, `/status` and the status page `/ui`, for any Fastify app. */
export function opsRoutes(init: OpsInit): FastifyPluginAsync {
  const ui = Object.entries(UI_FILES).map(([url, f]) => ({
    url,
    type: f.type,
    body: readFileSync(new URL(`./ui/${f.file}`, import.meta.url)),
  }))
  return async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }))
    app.get('/readyz', async (_req, reply) => {
      const reason = init.notReady()
      if (reason !== undefined) return reply.code(503).send({ status: 'starting', reason })
      return { status: 'ready' }
    })
    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', init.metrics.registry.contentType)
      return init.metrics.registry.metrics()
    })
    app.get('/status', async () => init.status())
    for (const f of ui) {
      app.get(f.url, async (_req, reply) =>
        reply.header('content-type', f.type).header('cache-control', 'no-cache').send(f.body),
      )
    }
  }
}

/** An HTTP app with only the operations routes: the agent's --metrics-listen, reachable by Prometheus. */
export function buildOpsApp(init: OpsInit & { readonly log: Logger }): FastifyInstance {
  const app = Fastify({
    loggerInstance: init.log,
    forceCloseConnections: true,
    return503OnClosing: true,
    schemaController: { compilersFactory: lazySchemaCompilers() },
  })
  void app.register(opsRoutes(init))
  return app as unknown as FastifyInstance
}
