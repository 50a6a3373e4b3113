import { createRequire } from 'node:module'
import type { FastifyServerOptions } from 'fastify'

/** Fastify's `schemaController.compilersFactory`: what turns a route's JSON schema into a validator or serializer. */
export type CompilersFactory = Required<
  NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
>

type Factory = (...args: unknown[]) => unknown
type Selector = () => Factory

/**
 * Fastify's default schema compilers (ajv and fast-json-stringify), loaded when a route first declares a schema
 * rather than when the app is built. Fastify requires both at construction; an app whose routes have no schema —
 * the agent's registry mirror, the operations endpoints — then never loads them (~90 modules, a few MiB of a
 * long-lived process's memory). An app with schemas gets exactly Fastify's defaults, resolved from Fastify's own
 * dependencies.
 */
export function lazySchemaCompilers(): CompilersFactory {
  const load = (name: string): Selector => {
    const fromFastify = createRequire(import.meta.resolve('fastify'))
    return fromFastify(name) as Selector
  }
  let validator: Factory | undefined
  let serializer: Factory | undefined
  const buildValidator: Factory = (...args) => (validator ??= load('@fastify/ajv-compiler')())(...args)
  const buildSerializer: Factory = (...args) =>
    (serializer ??= load('@fastify/fast-json-stringify-compiler')())(...args)
  return { buildValidator, buildSerializer } as unknown as CompilersFactory
}
