/**
 * Connection set-up benchmark: the CPU one libp2p connection costs to set up and tear down (TCP, the libp2p TLS
 * handshake, yamux), both ends counted, for the stock `tls()` of @libp2p/tls and for Shoal's encrypter that makes one
 * certificate per node (shared/p2p/tls.ts).
 *
 *   node bench/transport/handshake.ts [--connections 200] [--rounds 5]
 *
 * Two real nodes on 127.0.0.1 in this process (so process CPU is both ends' CPU), each pair built with one encrypter;
 * per round, each encrypter's pair opens `--connections` connections one after another (dial, then hang up). Rounds
 * alternate the order of the encrypters so drift hits both alike. Reported: CPU ms per connection, median and range
 * over the rounds, and the ratio of medians. A pair is warmed with a few connections first (the one certificate made,
 * the code paths compiled) so a round measures the steady state a long-lived agent lives in.
 */
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { createLibp2p, type Libp2p } from 'libp2p'
import { parseFlags } from '../args.ts'
import { reusedCertificateTls } from '../../shared/p2p/tls.ts'

type Mode = 'stock' | 'reused'
const MODES: readonly Mode[] = ['stock', 'reused']
const WARM_CONNECTIONS = 5

async function nodeFor(mode: Mode): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [mode === 'stock' ? tls() : reusedCertificateTls()],
    streamMuxers: [yamux()],
    // Every connection here comes from 127.0.0.1; libp2p refuses a host's sixth within a second by default.
    connectionManager: { inboundConnectionThreshold: 1_000_000 },
  })
}

async function connections(from: Libp2p, to: Libp2p, n: number): Promise<void> {
  const addr = multiaddr(to.getMultiaddrs()[0]?.toString() ?? '')
  for (let i = 0; i < n; i++) {
    const conn = await from.dial(addr)
    await conn.close()
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2
}

async function main(): Promise<void> {
  const { values } = parseFlags(process.argv.slice(2), {
    connections: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
  })
  const n = Number(values.connections)
  const rounds = Number(values.rounds)
  if (!(Number.isInteger(n) && n > 0 && Number.isInteger(rounds) && rounds > 0)) {
    throw new Error('--connections and --rounds must be positive integers')
  }
  const pairs = new Map<Mode, [Libp2p, Libp2p]>()
  for (const mode of MODES) {
    const pair: [Libp2p, Libp2p] = [await nodeFor(mode), await nodeFor(mode)]
    await connections(pair[0], pair[1], WARM_CONNECTIONS)
    pairs.set(mode, pair)
  }
  const perConnMs = new Map<Mode, number[]>(MODES.map((m) => [m, []]))
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? MODES : [...MODES].reverse()
    for (const mode of order) {
      const [a, b] = pairs.get(mode) ?? []
      if (a === undefined || b === undefined) throw new Error(`no pair for ${mode}`)
      const cpu0 = process.cpuUsage()
      await connections(a, b, n)
      const cpu = process.cpuUsage(cpu0)
      perConnMs.get(mode)?.push((cpu.user + cpu.system) / 1000 / n)
    }
  }
  for (const [a, b] of pairs.values()) await Promise.all([a.stop(), b.stop()])
  const rows = MODES.map((m) => {
    const xs = perConnMs.get(m) ?? []
    return { mode: m, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }
  })
  console.log(`connections per round: ${n}, rounds: ${rounds}; CPU ms per connection, both ends`)
  for (const r of rows) {
    console.log(`${r.mode.padEnd(7)} median ${r.median.toFixed(2)}  range ${r.min.toFixed(2)}-${r.max.toFixed(2)}`)
  }
  const [stock, reused] = rows
  if (stock !== undefined && reused !== undefined) {
    console.log(`reused / stock: ${(reused.median / stock.median).toFixed(3)}`)
  }
}

await main()
