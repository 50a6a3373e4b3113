/**
 * Chunk-protocol throughput between two processes on loopback: one connection, 4 MiB chunks, a fixed number
 * of requests in flight. Not a test; run by hand:
 *
 *   node test/shared/swarm/protocol/throughput-probe.ts [--mib 512] [--inflight 4] [--encrypter tls|noise] [--raw]
 *
 * The parent spawns a child that serves one synthetic blob (the same 4 MiB buffer for every index; nothing is
 * verified, this measures the wire) and fetches every chunk from it.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { type Digest, digestOf } from '../../../../shared/oci/digest.ts'
import { createP2PNode, type EncrypterName } from '../../../../shared/p2p/index.ts'
import { ChunkClient, ChunkServer, type ChunkSource } from '../../../../shared/swarm/protocol/index.ts'

const CHUNK = 4 * 1024 * 1024
const RAW_PROTOCOL = '/shoal/probe-raw/1.0.0'
const { values } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    mib: { type: 'string', default: '512' },
    inflight: { type: 'string', default: '4' },
    encrypter: { type: 'string', default: 'tls' },
    // raw: the same bytes over ONE plain libp2p stream in 256 KiB writes, the baseline for the protocol's cost.
    raw: { type: 'boolean', default: false },
  },
})
const chunks = Math.ceil((Number(values.mib) * 1024 * 1024) / CHUNK)
const encrypter = values.encrypter as EncrypterName
const digest = digestOf(new TextEncoder().encode('throughput probe')) as Digest

async function node(): Promise<{ node: Awaited<ReturnType<typeof createP2PNode>>; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-probe-'))
  const n = await createP2PNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], encrypters: [encrypter] })
  return {
    node: n,
    cleanup: async () => {
      await n.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function serve(): Promise<void> {
  const { node: n, cleanup } = await node()
  const bytes = new Uint8Array(CHUNK).map((_, i) => (i * 31) & 0xff)
  const source: ChunkSource = {
    map: async () => undefined,
    have: () => ({ size: chunks * CHUNK, chunkSize: CHUNK, bitfield: Bitfield.full(chunks), complete: true }),
    waitHave: async () => {},
    readChunk: async () => ({ bytes }),
  }
  const server = new ChunkServer({ registrar: n }, { source, maxConcurrentUploads: 64 })
  await server.start()
  await n.handle(RAW_PROTOCOL, async (stream) => {
    const piece = bytes.subarray(0, 256 * 1024)
    for (let sent = 0; sent < chunks * CHUNK; sent += piece.byteLength) {
      if (!stream.send(piece)) await stream.onDrain()
    }
    await stream.close()
  })
  process.stdout.write(`${n.getMultiaddrs()[0]!.toString()}\n`)
  process.stdin.resume()
  process.stdin.on('end', () => {
    void server.stop().then(cleanup)
  })
}

async function fetchAll(): Promise<void> {
  const child = spawn(process.execPath, [import.meta.filename, '--serve', ...process.argv.slice(2)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve))
  const { node: n, cleanup } = await node()
  const client = new ChunkClient({ node: n })
  const addr = multiaddr(line)
  const peer = (await n.dial(addr)).remotePeer
  if (values.raw) {
    const t0 = performance.now()
    const stream = await n.dialProtocol(addr, RAW_PROTOCOL)
    await stream.close()
    let bytes = 0
    for await (const piece of stream) bytes += piece.byteLength
    const seconds = (performance.now() - t0) / 1000
    console.log(
      `${encrypter} raw stream: ${(bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(2)} s = ${(bytes / 1e6 / seconds).toFixed(0)} MB/s`,
    )
    await cleanup()
    child.stdin.end()
    return
  }
  const inflight = Number(values.inflight)
  let next = 0
  let bytes = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < chunks) {
        const index = next++
        const r = await client.getChunk(peer, digest, index, { maxBytes: CHUNK })
        if (typeof r === 'string') throw new Error(`chunk ${index}: ${r}`)
        bytes += r.bytes.byteLength
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  console.log(
    `${encrypter}: ${chunks} chunks of 4 MiB, ${inflight} in flight: ${(bytes / 1e6).toFixed(0)} MB in ` +
      `${seconds.toFixed(2)} s = ${(bytes / 1e6 / seconds).toFixed(0)} MB/s`,
  )
  await cleanup()
  child.stdin.end()
}

await (values.serve ? serve() : fetchAll())
