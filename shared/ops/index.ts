export { Readiness } from './readiness.ts'
export { RECENT_PULLS, type RecentPull, RecentPulls } from './recent.ts'
export { buildOpsApp, type OpsInit, opsRoutes } from './routes.ts'
export { type CompilersFactory, lazySchemaCompilers } from './schema-compilers.ts'
