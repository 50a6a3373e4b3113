/**
 * Transport benchmark: how fast one libp2p stream moves bytes between two processes on 127.0.0.1, per
 * connection encrypter (and with the pnet protector), against plain HTTP between the same two processes.
 *
 *   node bench/transport/main.ts [--mib 512] [--runs 3] [--modes http,plaintext,noise,tls,...]
 *
 * The peer process (peer.ts) serves; this process reads. Runs are interleaved across modes so that drift
 * (thermal, other load) hits every mode alike. The figure reported is the median of the runs.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { parseFlags } from '../args.ts'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { Agent, request } from 'undici'
import { generateSwarmKey } from '../../shared/p2p/index.ts'
import { BENCH_PROTOCOL, type Mode, nodeFor, type ReadyMessage } from './peer.ts'

const ALL_MODES: readonly Mode[] = [
  'http',
  'https',
  'plaintext',
  'noise',
  'tls',
  'noise+pnet',
  'tls+pnet',
  'shoal',
  'shoal+pnet',
]
/** The bar: peer chunk traffic must reach at least this fraction of plain HTTP. */
const TARGET_RATIO = 0.5

async function readLibp2p(node: Libp2p, addrs: readonly string[]): Promise<number> {
  const stream = await node.dialProtocol(
    addrs.map((a) => multiaddr(a)),
    BENCH_PROTOCOL,
  )
  let n = 0
  for await (const chunk of stream) n += chunk.byteLength
  await stream.close()
  return n
}

// The bench only measures HTTPS speed; the proposed bulk path would pin the peer's libp2p certificate instead.
const insecureTls = new Agent({ connect: { rejectUnauthorized: false } })

async function readHttp(url: string): Promise<number> {
  const res = await request(url, url.startsWith('https:') ? { dispatcher: insecureTls } : {})
  let n = 0
  for await (const chunk of res.body) n += (chunk as Buffer).byteLength
  return n
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

async function main(): Promise<void> {
  const { values } = parseFlags(process.argv.slice(2), {
    mib: { type: 'string', default: '512' },
    runs: { type: 'string', default: '3' },
    modes: { type: 'string', default: ALL_MODES.join(',') },
    // yamux frame payload limit for the non-shoal modes (yamux's default is 64 KiB)
    'yamux-message-kib': { type: 'string' },
  } as const)
  const bytes = Number(values.mib) * 1024 * 1024
  const runs = Number(values.runs)
  const modes = values.modes.split(',') as Mode[]
  for (const m of modes) if (!ALL_MODES.includes(m)) throw new Error(`unknown mode ${m}`)
  if (!modes.includes('http')) modes.unshift('http')
  const swarmKey = generateSwarmKey()
  const kib = values['yamux-message-kib']
  const yamuxMessageBytes = kib === undefined ? undefined : Number(kib) * 1024

  const child = fork(new URL('./peer.ts', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = once(child, 'exit')
  child.send({ modes, bytes, swarmKey, yamuxMessageBytes })
  const [ready] = (await once(child, 'message')) as [ReadyMessage]

  const clients = new Map<Mode, { node: Libp2p; stop: () => Promise<void> }>()
  for (const mode of modes) {
    if (mode !== 'http' && mode !== 'https')
      clients.set(mode, await nodeFor(mode, new TextEncoder().encode(swarmKey), yamuxMessageBytes))
  }
  const rates = new Map<Mode, number[]>(modes.map((m) => [m, []]))
  try {
    // One warm-up transfer per mode: dial, handshake and JIT are not what is being measured.
    for (const mode of modes) {
      const c = clients.get(mode)
      if (c === undefined) await readHttp(mode === 'https' ? ready.https : ready.http)
      else await readLibp2p(c.node, ready.addrs[mode] ?? [])
    }
    for (let r = 0; r < runs; r++) {
      for (const mode of modes) {
        const c = clients.get(mode)
        const t0 = performance.now()
        const got =
          c === undefined
            ? await readHttp(mode === 'https' ? ready.https : ready.http)
            : await readLibp2p(c.node, ready.addrs[mode] ?? [])
        const seconds = (performance.now() - t0) / 1000
        if (got !== bytes) throw new Error(`${mode}: got ${got} bytes, want ${bytes}`)
        rates.get(mode)!.push(bytes / 1e6 / seconds)
        process.stderr.write(`run ${r + 1}/${runs} ${mode.padEnd(11)} ${(bytes / 1e6 / seconds).toFixed(0)} MB/s\n`)
      }
    }
  } finally {
    for (const c of clients.values()) await c.stop()
    child.send('stop')
    await exited
    await insecureTls.close()
  }

  const http = median(rates.get('http')!)
  console.log(`\n${values.mib} MiB over one stream, 127.0.0.1, two processes, median of ${runs} runs (MB = 1e6 B)`)
  console.log(`${'mode'.padEnd(12)}${'MB/s'.padStart(8)}${'min'.padStart(8)}${'max'.padStart(8)}  vs HTTP`)
  for (const mode of modes) {
    const xs = rates.get(mode)!
    const m = median(xs)
    const ratio = m / http
    const mark = mode === 'http' ? '' : ratio >= TARGET_RATIO ? '  ok (>= 0.5)' : '  below 0.5'
    console.log(
      `${mode.padEnd(12)}${m.toFixed(0).padStart(8)}${Math.min(...xs)
        .toFixed(0)
        .padStart(8)}${Math.max(...xs)
        .toFixed(0)
        .padStart(8)}  ${ratio.toFixed(2)}${mark}`,
    )
  }
}

await main()
