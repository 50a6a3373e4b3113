/**
 * The reading side of bench/swarm (c), forked by main.ts so that reader and holder do not share an event loop.
 * It holds its own libp2p node and asks the holder agent for a complete blob three ways, on command:
 * `bulk` (ChunkClient.getChunk as the agent uses it by default: a ticket over libp2p, bytes over the bulk HTTPS
 * path), `libp2p` (ChunkClient.getChunk over libp2p streams only), both with `depth` requests in flight, and
 * `http` (the agent's /v2/ blob URL, undici).
 * Bytes are counted, not hashed, in both: the comparison is about the transports.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { request } from 'undici'
import { chunkCount, chunkRange } from '../../shared/chunks/index.ts'
import { parseDigest } from '../../shared/oci/index.ts'
import { createP2PNode, loadOrCreateIdentity } from '../../shared/p2p/index.ts'
import { BulkClient, createBulkCredentials } from '../../shared/swarm/bulk/index.ts'
import { ChunkClient } from '../../shared/swarm/protocol/index.ts'

export interface ReaderSetup {
  readonly t: 'setup'
  readonly multiaddr: string
  readonly peerId: string
  readonly blobUrl: string
  readonly digest: string
  readonly size: number
  readonly chunkSize: number
  readonly depth: number
}

export type ReaderMode = 'bulk' | 'libp2p' | 'http'

export type ReaderCommand = ReaderSetup | { readonly t: 'run'; readonly mode: ReaderMode } | { readonly t: 'stop' }

export type ReaderReply =
  | { readonly t: 'ready'; readonly encryption: string }
  | { readonly t: 'result'; readonly mode: ReaderMode; readonly bytes: number; readonly seconds: number }
  | { readonly t: 'error'; readonly message: string }

const send = (m: ReaderReply): void => {
  process.send?.(m)
}

async function main(): Promise<void> {
  const setup = await next<ReaderSetup>('setup')
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-reader-'))
  const node = await createP2PNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'] })
  try {
    const holder = peerIdFromString(setup.peerId)
    const conn = await node.dial(multiaddr(setup.multiaddr), { signal: AbortSignal.timeout(10_000) })
    const streams = new ChunkClient({ node })
    const bulk = new BulkClient({ credentials: await createBulkCredentials(await loadOrCreateIdentity(dir)) })
    const shoal = new ChunkClient({ node, bulk })
    const digest = parseDigest(setup.digest)
    const geometry = { size: setup.size, chunkSize: setup.chunkSize }
    send({ t: 'ready', encryption: conn.encryption ?? 'unknown' })
    for (;;) {
      const cmd = await next<ReaderCommand>()
      if (cmd.t === 'stop') break
      if (cmd.t !== 'run') continue
      const t0 = performance.now()
      let bytes = 0
      if (cmd.mode !== 'http') {
        const client = cmd.mode === 'bulk' ? shoal : streams
        const before = client.transfers
        const n = chunkCount(geometry.size, geometry.chunkSize)
        let nextIndex = 0
        const worker = async (): Promise<void> => {
          while (nextIndex < n) {
            const index = nextIndex++
            const { start, end } = chunkRange(geometry, index)
            for (;;) {
              const res = await client.getChunk(holder, digest, index, { maxBytes: end - start })
              if (res === 'none') throw new Error(`holder has no chunk ${index}`)
              if (res === 'busy') continue // an upload slot frees as soon as one of our own transfers ends
              bytes += res.bytes.byteLength
              break
            }
          }
        }
        await Promise.all(Array.from({ length: setup.depth }, worker))
        const after = client.transfers
        // Each mode must have measured the path it names.
        if (cmd.mode === 'bulk' && (after.stream !== before.stream || after.fallbacks !== before.fallbacks)) {
          throw new Error(`bulk run used the libp2p stream for ${after.stream - before.stream} chunks`)
        }
        if (cmd.mode === 'libp2p' && after.bulk !== before.bulk) throw new Error('libp2p run used the bulk path')
      } else {
        const res = await request(setup.blobUrl)
        if (res.statusCode !== 200) throw new Error(`GET ${setup.blobUrl}: ${res.statusCode}`)
        for await (const part of res.body) bytes += (part as Uint8Array).byteLength
      }
      if (bytes !== setup.size) throw new Error(`${cmd.mode}: read ${bytes} bytes of ${setup.size}`)
      send({ t: 'result', mode: cmd.mode, bytes, seconds: (performance.now() - t0) / 1000 })
    }
    await bulk.stop()
  } finally {
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

const queue: ReaderCommand[] = []
let wake: (() => void) | undefined
process.on('message', (m: ReaderCommand) => {
  queue.push(m)
  wake?.()
})

async function next<T extends ReaderCommand>(type?: T['t']): Promise<T> {
  for (;;) {
    const m = queue.shift()
    if (m !== undefined) {
      if (type !== undefined && m.t !== type) throw new Error(`expected ${type}, got ${m.t}`)
      return m as T
    }
    await new Promise<void>((resolve) => (wake = resolve))
  }
}

main().then(
  () => process.disconnect?.(),
  (err: unknown) => {
    send({ t: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    process.exitCode = 1
    process.disconnect?.()
  },
)
