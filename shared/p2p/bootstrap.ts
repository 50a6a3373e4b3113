import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { ComponentLogger, Connection, Logger, PeerId, Startable } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import {
  BOOTSTRAP_DIAL_CONCURRENCY,
  BOOTSTRAP_DIAL_TIMEOUT_MS,
  BOOTSTRAP_RETRY_INTERVAL_MS,
  DEFAULT_P2P_PORT,
} from './constants.ts'
import { peerIdOf } from '../swarm/seeders.ts'
import { InvalidBootstrapEntryError } from './errors.ts'

/** Resolves a host name to IP addresses (all A and AAAA records). Injected in tests. */
export type HostResolver = (hostname: string, options: { signal?: AbortSignal }) => Promise<readonly string[]>

export type BootstrapEntry =
  | { readonly kind: 'multiaddr'; readonly addr: Multiaddr }
  | { readonly kind: 'dns'; readonly hostname: string; readonly port: number }

const HOSTNAME_RE = /^(?=.{1,253}$)[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62}))*\.?$/

/**
 * Parses one bootstrap entry: a multiaddr (normally ending in `/p2p/<id>`; without it the id is learnt in the
 * handshake) or `dns:NAME[:PORT]`, a name whose every A/AAAA record is a peer (a Kubernetes headless service).
 */
export function parseBootstrapEntry(entry: string): BootstrapEntry {
  if (entry.startsWith('dns:')) {
    const rest = entry.slice('dns:'.length)
    const m = /^(.*?)(?::(\d{1,5}))?$/.exec(rest)
    const hostname = m?.[1] ?? ''
    const port = m?.[2] === undefined ? DEFAULT_P2P_PORT : Number(m[2])
    if (!HOSTNAME_RE.test(hostname) || port < 1 || port > 65535) {
      throw new InvalidBootstrapEntryError(`invalid bootstrap entry ${JSON.stringify(entry)}: want dns:NAME[:PORT]`)
    }
    return { kind: 'dns', hostname, port }
  }
  if (entry.startsWith('/')) {
    try {
      return { kind: 'multiaddr', addr: multiaddr(entry) }
    } catch (err) {
      throw new InvalidBootstrapEntryError(`invalid bootstrap multiaddr ${JSON.stringify(entry)}`, { cause: err })
    }
  }
  throw new InvalidBootstrapEntryError(`invalid bootstrap entry ${JSON.stringify(entry)}: want a multiaddr or dns:NAME`)
}

/** getaddrinfo, so /etc/hosts and the cluster's search domains apply like for any other client. */
export const systemResolver: HostResolver = async (hostname, options) => {
  options.signal?.throwIfAborted()
  const found = await lookup(hostname, { all: true, verbatim: true })
  options.signal?.throwIfAborted()
  return found.map((a) => a.address)
}

/**
 * Turns entries into dialable multiaddrs. A name that does not resolve is skipped (logged) rather than failing
 * the others: during a rollout the service may have no ready pod yet, and the next round will try again.
 */
export async function resolveBootstrap(
  entries: readonly BootstrapEntry[],
  resolver: HostResolver,
  options: { signal?: AbortSignal; log?: Logger } = {},
): Promise<Multiaddr[]> {
  const out = new Map<string, Multiaddr>()
  await Promise.all(
    entries.map(async (e) => {
      if (e.kind === 'multiaddr') {
        out.set(e.addr.toString(), e.addr)
        return
      }
      let addresses: readonly string[]
      try {
        addresses = await resolver(e.hostname, { signal: options.signal })
      } catch (err) {
        options.signal?.throwIfAborted()
        options.log?.('could not resolve bootstrap name %s - %e', e.hostname, err)
        return
      }
      for (const a of addresses) {
        const family = isIP(a)
        if (family === 0) continue
        const ma = multiaddr(`/ip${family}/${a}/tcp/${e.port}`)
        out.set(ma.toString(), ma)
      }
    }),
  )
  return [...out.values()]
}

export interface BootstrapInit {
  readonly entries: readonly BootstrapEntry[]
  readonly resolver?: HostResolver
  readonly retryIntervalMs?: number
  readonly dialTimeoutMs?: number
}

/** The slice of libp2p's internal components this service needs (structural, so no internal import). */
export interface BootstrapComponents {
  readonly peerId: PeerId
  readonly logger: ComponentLogger
  readonly connectionManager: {
    openConnection(peer: Multiaddr, options?: { signal?: AbortSignal }): Promise<Connection>
    getConnections(): Connection[]
  }
  readonly addressManager: { getAddresses(): Multiaddr[] }
}

export interface BootstrapResult {
  /** Addresses dialled this round (own addresses excluded). */
  readonly dialled: number
  /** Peer ids connected to this round. */
  readonly connected: readonly string[]
}

export interface Bootstrap {
  /** Resolves every entry and dials every address once; never throws for an unreachable peer. */
  bootstrap(options?: { signal?: AbortSignal }): Promise<BootstrapResult>
}

/**
 * Dials the bootstrap peers when the node starts and again every retry interval while the node has no
 * connection at all (seeders restarted, network partition), so an isolated agent finds the swarm again.
 */
export class BootstrapService implements Bootstrap, Startable {
  readonly #components: BootstrapComponents
  readonly #entries: readonly BootstrapEntry[]
  readonly #resolver: HostResolver
  readonly #retryIntervalMs: number
  readonly #dialTimeoutMs: number
  readonly #log: Logger
  #controller = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #round: Promise<BootstrapResult> | undefined

  constructor(components: BootstrapComponents, init: BootstrapInit) {
    this.#components = components
    this.#entries = init.entries
    this.#resolver = init.resolver ?? systemResolver
    this.#retryIntervalMs = init.retryIntervalMs ?? BOOTSTRAP_RETRY_INTERVAL_MS
    this.#dialTimeoutMs = init.dialTimeoutMs ?? BOOTSTRAP_DIAL_TIMEOUT_MS
    this.#log = components.logger.forComponent('shoal:p2p:bootstrap')
  }

  readonly [Symbol.toStringTag] = 'shoal:bootstrap'

  start(): void {
    this.#controller = new AbortController()
  }

  afterStart(): void {
    if (this.#entries.length === 0) return
    this.#kick()
    this.#timer = setInterval(() => {
      if (this.#components.connectionManager.getConnections().length === 0) this.#kick()
    }, this.#retryIntervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#controller.abort()
    await this.#round?.catch(() => {})
  }

  #kick(): void {
    if (this.#round !== undefined) return
    this.#round = this.bootstrap({ signal: this.#controller.signal })
      .then((r) => {
        this.#log('bootstrap round dialled %d addresses, connected to %d peers', r.dialled, r.connected.length)
        return r
      })
      .catch((err: unknown) => {
        if (!this.#controller.signal.aborted) this.#log.error('bootstrap round failed - %e', err)
        return { dialled: 0, connected: [] }
      })
      .finally(() => {
        this.#round = undefined
      })
  }

  async bootstrap(options: { signal?: AbortSignal } = {}): Promise<BootstrapResult> {
    const signal = anySignal(this.#controller.signal, options.signal)
    const resolved = await resolveBootstrap(this.#entries, this.#resolver, { signal, log: this.#log })
    const own = new Set(this.#components.addressManager.getAddresses().map((a) => transportKey(a)))
    const self = this.#components.peerId.toString()
    // A headless service resolves to this pod too, and a static list of seeders names each seeder itself:
    // dialling ourselves would waste a handshake or worse.
    const targets = resolved.filter((a) => !own.has(transportKey(a)) && peerIdOf(a) !== self)
    const connected = new Set<string>()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < targets.length) {
        const target = targets[next++]!
        signal.throwIfAborted()
        try {
          const conn = await this.#components.connectionManager.openConnection(target, {
            signal: anySignal(signal, AbortSignal.timeout(this.#dialTimeoutMs)),
          })
          connected.add(conn.remotePeer.toString())
        } catch (err) {
          signal.throwIfAborted()
          this.#log('could not dial bootstrap address %a - %e', target, err)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(BOOTSTRAP_DIAL_CONCURRENCY, targets.length) }, worker))
    return { dialled: targets.length, connected: [...connected] }
  }
}

function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined))
}

/** The address without its /p2p/ part, so "is this me?" compares where we listen, not who we claim to be. */
function transportKey(a: Multiaddr): string {
  return a
    .getComponents()
    .filter((c) => c.name !== 'p2p')
    .map((c) => `/${c.name}${c.value === undefined ? '' : `/${c.value}`}`)
    .join('')
}

export function bootstrapService(init: BootstrapInit): (components: BootstrapComponents) => BootstrapService {
  return (components) => new BootstrapService(components, init)
}
