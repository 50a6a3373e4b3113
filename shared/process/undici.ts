import type * as UndiciModule from 'undici'

/**
 * undici, loaded at the first request that needs it rather than at start-up: an agent or seeder that has not yet
 * sent an origin a request with a body (an upload it relays: GET and HEAD go through `node:http`, see
 * shared/origin/node-exchange.ts) or asked a peer's bulk endpoint for a chunk does not hold its ~110 modules (about 4 MiB of V8 heap, plus
 * the `node:` built-ins it pulls in; measured by bench/datapath's idle rows). Every later call gets the same module.
 */
type Undici = typeof UndiciModule

let loading: Promise<Undici> | undefined
let loaded: Undici | undefined

export function loadUndici(): Promise<Undici> {
  loading ??= import('undici').then((m) => (loaded = m))
  return loading
}

/** The module once `loadUndici` has resolved, else undefined (for paths that must stay synchronous). */
export function undiciIfLoaded(): Undici | undefined {
  return loaded
}
