/**
 * `node:http` as Node's own object. An ESM `import … from 'node:http'` builds the module's namespace, which reads its
 * lazy `WebSocket`/`MessageEvent`/`CloseEvent` getters and so loads Node's bundled undici (~0.7 MiB of source) into
 * every agent and seeder that never uses it. Type-only imports of `node:http` are fine (they are erased).
 */
export const nodeHttp = process.getBuiltinModule('node:http')
