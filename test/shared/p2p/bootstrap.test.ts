import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ComponentLogger, Connection, Logger } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { BootstrapService } from '../../../shared/p2p/bootstrap.ts'
import {
  type BootstrapEntry,
  createP2PNode,
  DEFAULT_P2P_PORT,
  type HostResolver,
  InvalidBootstrapEntryError,
  type P2PNode,
  parseBootstrapEntry,
  resolveBootstrap,
} from '../../../shared/p2p/index.ts'

const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'

/** A resolver backed by a table, standing in for DNS (a headless service's records, /etc/hosts). */
function tableResolver(table: Record<string, readonly string[]>, calls: string[] = []): HostResolver {
  return async (hostname, options) => {
    options.signal?.throwIfAborted()
    calls.push(hostname)
    const found = table[hostname]
    if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return found
  }
}

const silent: Logger = Object.assign(() => {}, {
  error: () => {},
  trace: () => {},
  enabled: false,
  newScope: (): Logger => silent,
})
const logger: ComponentLogger = { forComponent: () => silent }

describe('parseBootstrapEntry', () => {
  it('reads dns:NAME[:PORT], defaulting the port', () => {
    expect(parseBootstrapEntry('dns:shoal-seeder.shoal.svc.cluster.local:4101')).toEqual({
      kind: 'dns',
      hostname: 'shoal-seeder.shoal.svc.cluster.local',
      port: 4101,
    })
    expect(parseBootstrapEntry('dns:seeder')).toEqual({ kind: 'dns', hostname: 'seeder', port: DEFAULT_P2P_PORT })
  })

  it('reads multiaddrs with and without a peer id', () => {
    const e = parseBootstrapEntry(`/ip4/10.0.0.7/tcp/4001/p2p/${PEER}`)
    expect(e.kind === 'multiaddr' && e.addr.getComponents().find((c) => c.name === 'p2p')?.value).toBe(PEER)
    const bare = parseBootstrapEntry('/dns4/seeder/tcp/4001')
    expect(bare.kind === 'multiaddr' && bare.addr.toString()).toBe('/dns4/seeder/tcp/4001')
  })

  it.each([
    'seeder:4001',
    'dns:',
    'dns::4001',
    'dns:bad host',
    'dns:seeder:0',
    'dns:seeder:65536',
    'dns:-seeder',
    '/ip4/999.0.0.1/tcp/4001',
    '/nonsense',
  ])('rejects %j', (entry) => {
    expect(() => parseBootstrapEntry(entry)).toThrow(InvalidBootstrapEntryError)
  })
})

describe('resolveBootstrap', () => {
  it('turns a name into one dial address per A/AAAA record (localhost → 127.0.0.1)', async () => {
    const addrs = await resolveBootstrap(
      [parseBootstrapEntry('dns:localhost:4101')],
      tableResolver({ localhost: ['127.0.0.1', '::1'] }),
    )
    expect(addrs.map(String)).toEqual(['/ip4/127.0.0.1/tcp/4101', '/ip6/::1/tcp/4101'])
  })

  it('expands a headless service, keeps multiaddrs, drops duplicates and skips names that do not resolve', async () => {
    const entries: BootstrapEntry[] = [
      parseBootstrapEntry('dns:seeders'),
      parseBootstrapEntry('dns:seeders'),
      parseBootstrapEntry('dns:not-ready-yet'),
      parseBootstrapEntry(`/ip4/10.0.0.9/tcp/4001/p2p/${PEER}`),
    ]
    const addrs = await resolveBootstrap(entries, tableResolver({ seeders: ['10.0.0.1', '10.0.0.2', 'junk'] }))
    expect(addrs.map(String).sort()).toEqual([
      '/ip4/10.0.0.1/tcp/4001',
      '/ip4/10.0.0.2/tcp/4001',
      `/ip4/10.0.0.9/tcp/4001/p2p/${PEER}`,
    ])
  })

  it('stops when aborted', async () => {
    const ac = new AbortController()
    ac.abort()
    await expect(
      resolveBootstrap([parseBootstrapEntry('dns:seeders')], tableResolver({ seeders: ['10.0.0.1'] }), {
        signal: ac.signal,
      }),
    ).rejects.toThrow(/abort/i)
  })
})

describe('BootstrapService', () => {
  function stubbed(opts: {
    own: readonly string[]
    table: Record<string, readonly string[]>
    reachable: ReadonlySet<string>
    connections?: () => number
    retryIntervalMs?: number
  }): { service: BootstrapService; dialled: string[]; calls: string[] } {
    const dialled: string[] = []
    const calls: string[] = []
    const service = new BootstrapService(
      {
        peerId: peerIdFromString(PEER),
        logger,
        addressManager: { getAddresses: () => opts.own.map((a) => multiaddr(a)) },
        connectionManager: {
          getConnections: () => Array.from({ length: opts.connections?.() ?? 0 }) as Connection[],
          openConnection: async (ma: Multiaddr) => {
            dialled.push(ma.toString())
            if (!opts.reachable.has(ma.toString())) throw new Error('ECONNREFUSED')
            return { remotePeer: { toString: () => `peer@${ma.toString()}` } } as unknown as Connection
          },
        },
      },
      {
        entries: [
          parseBootstrapEntry('dns:seeders:4001'),
          // This node itself, as a static seeder list would name it.
          parseBootstrapEntry(`/ip4/10.0.0.8/tcp/4001/p2p/${PEER}`),
        ],
        resolver: tableResolver(opts.table, calls),
        retryIntervalMs: opts.retryIntervalMs,
      },
    )
    return { service, dialled, calls }
  }

  it('dials every resolved address except its own addresses and peer id, and reports who answered', async () => {
    const { service, dialled } = stubbed({
      own: [`/ip4/10.0.0.2/tcp/4001/p2p/${PEER}`],
      table: { seeders: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] },
      reachable: new Set(['/ip4/10.0.0.3/tcp/4001']),
    })
    service.start()
    const result = await service.bootstrap()
    expect(dialled.sort()).toEqual(['/ip4/10.0.0.1/tcp/4001', '/ip4/10.0.0.3/tcp/4001'])
    expect(result).toEqual({ dialled: 2, connected: ['peer@/ip4/10.0.0.3/tcp/4001'] })
    await service.stop()
  })

  it('bootstraps again while the node has no connection, and stops doing so when stopped', async () => {
    let connections = 0
    const { service, calls } = stubbed({
      own: [],
      table: { seeders: ['10.0.0.1'] },
      reachable: new Set(),
      connections: () => connections,
      retryIntervalMs: 5,
    })
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    try {
      service.start()
      service.afterStart()
      await vi.advanceTimersByTimeAsync(5 * 3)
      expect(calls.length).toBe(4)
      connections = 1
      await vi.advanceTimersByTimeAsync(5 * 10)
      expect(calls.length).toBe(4)
      connections = 0
      await vi.advanceTimersByTimeAsync(5)
      expect(calls.length).toBe(5)
      await service.stop()
      await vi.advanceTimersByTimeAsync(5 * 10)
      expect(calls.length).toBe(5)
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('dns bootstrap between real nodes', () => {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  async function node(opts: { bootstrap?: string[]; resolver?: HostResolver } = {}): Promise<P2PNode> {
    const dataDir = await mkdtemp(join(tmpdir(), 'shoal-bootstrap-'))
    const n = await createP2PNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], ...opts })
    cleanups.push(async () => {
      await n.stop()
      await rm(dataDir, { recursive: true, force: true })
    })
    return n
  }

  it('finds a seeder by name and learns its peer id in the handshake', async () => {
    const seeder = await node()
    const port = seeder
      .getMultiaddrs()[0]!
      .getComponents()
      .find((c) => c.name === 'tcp')?.value
    const connected = new Promise<string>((resolve) => {
      seeder.addEventListener('peer:connect', (evt) => resolve(evt.detail.toString()), { once: true })
    })
    const agent = await node({
      bootstrap: [`dns:seeder.test:${port}`],
      resolver: tableResolver({ 'seeder.test': ['127.0.0.1'] }),
    })
    expect(await connected).toBe(agent.peerId.toString())
    const result = await agent.services.bootstrap.bootstrap()
    expect(result.connected).toEqual([seeder.peerId.toString()])
  })
})
