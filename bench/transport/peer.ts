/**
 * The serving side of the transport benchmark, run in its own process by main.ts.
 * It serves BYTES bytes on one libp2p stream (protocol /shoal/bench/1.0.0) and on `GET /blob` over plain HTTP,
 * then reports its listen addresses to the parent over the IPC channel and waits to be told to stop.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { ConnectionProtector, Libp2p, Stream } from '@libp2p/interface'
import { plaintext } from '@libp2p/plaintext'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { generateCertificate } from '@libp2p/tls/utils'
import { createLibp2p } from 'libp2p'
import { createP2PNode } from '../../shared/p2p/index.ts'

export const BENCH_PROTOCOL = '/shoal/bench/1.0.0'
export const WRITE_SIZE_BYTES = 256 * 1024

export type EncrypterName = 'noise' | 'tls' | 'plaintext'

// Builds the same minimal stack on both sides: TCP, one encrypter, yamux, optional pnet.
export async function benchNode(
  encrypter: EncrypterName,
  swarmKey: Uint8Array | undefined,
  listen: readonly string[],
  yamuxMessageBytes?: number,
): Promise<Libp2p> {
  type EncrypterFactories = NonNullable<Parameters<typeof createLibp2p>[0]>['connectionEncrypters']
  const enc = [{ noise: noise(), tls: tls(), plaintext: plaintext() }[encrypter]] as EncrypterFactories
  const protector: (() => ConnectionProtector) | undefined =
    swarmKey === undefined ? undefined : preSharedKey({ psk: swarmKey })
  return createLibp2p({
    addresses: { listen: [...listen] },
    transports: [tcp()],
    connectionEncrypters: enc,
    streamMuxers: [yamux(yamuxMessageBytes === undefined ? {} : { maxMessageSize: yamuxMessageBytes })],
    ...(protector === undefined ? {} : { connectionProtector: protector }),
  })
}

/** Writes `total` bytes to the stream in WRITE_SIZE_BYTES sends, honouring backpressure, then closes it. */
export async function sendBytes(stream: Stream, total: number): Promise<void> {
  const block = new Uint8Array(WRITE_SIZE_BYTES).fill(0x5a)
  let left = total
  while (left > 0) {
    const n = Math.min(left, block.byteLength)
    left -= n
    if (!stream.send(n === block.byteLength ? block : block.subarray(0, n))) await stream.onDrain()
  }
  await stream.close()
}

export type Mode = 'http' | 'https' | EncrypterName | `${EncrypterName}+pnet` | 'shoal' | 'shoal+pnet'

interface StartMessage {
  readonly modes: readonly Mode[]
  readonly bytes: number
  readonly swarmKey: string
  readonly yamuxMessageBytes?: number
}

export interface ReadyMessage {
  readonly http: string
  readonly https: string
  readonly addrs: Readonly<Record<string, readonly string[]>>
}

/** Starts a node for `mode` on loopback; `shoal` modes use the product's own factory and defaults. */
export async function nodeFor(
  mode: Exclude<Mode, 'http' | 'https'>,
  swarmKey: Uint8Array,
  yamuxMessageBytes?: number,
): Promise<{ node: Libp2p; stop: () => Promise<void> }> {
  const listen = ['/ip4/127.0.0.1/tcp/0']
  const pnet = mode.endsWith('+pnet')
  if (mode === 'shoal' || mode === 'shoal+pnet') {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-'))
    const node = await createP2PNode({ dataDir: dir, listen, swarmKey: pnet ? swarmKey : undefined, dhtServer: false })
    return {
      node,
      stop: async () => {
        await node.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
  }
  const encrypter = mode.replace('+pnet', '') as EncrypterName
  const node = await benchNode(encrypter, pnet ? swarmKey : undefined, listen, yamuxMessageBytes)
  return {
    node,
    stop: async () => {
      await node.stop()
    },
  }
}

function serveHttp(bytes: number, tlsOptions?: { cert: string; key: string }): Server {
  const block = Buffer.alloc(WRITE_SIZE_BYTES, 0x5a)
  const handler = (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes) })
    let left = bytes
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, block.byteLength)
        left -= n
        if (!res.write(n === block.byteLength ? block : block.subarray(0, n))) {
          res.once('drain', pump)
          return
        }
      }
      res.end()
    }
    pump()
  }
  return tlsOptions === undefined ? createServer(handler) : createHttpsServer(tlsOptions, handler)
}

async function main(): Promise<void> {
  const start = await new Promise<StartMessage>((resolve) => process.once('message', (m) => resolve(m as StartMessage)))
  const swarmKey = new TextEncoder().encode(start.swarmKey)
  const stops: (() => Promise<void>)[] = []
  const addrs: Record<string, readonly string[]> = {}
  for (const mode of start.modes) {
    if (mode === 'http' || mode === 'https') continue
    const { node, stop } = await nodeFor(mode, swarmKey, start.yamuxMessageBytes)
    stops.push(stop)
    await node.handle(BENCH_PROTOCOL, (stream) => sendBytes(stream, start.bytes))
    addrs[mode] = node.getMultiaddrs().map((a) => a.toString())
  }
  const server = serveHttp(start.bytes)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  // HTTPS with the certificate libp2p's TLS encrypter would present: an Ed25519 key bound to a peer id.
  const https = serveHttp(start.bytes, await generateCertificate(await generateKeyPair('Ed25519')))
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve))
  const ready: ReadyMessage = {
    http: `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`,
    https: `https://127.0.0.1:${(https.address() as AddressInfo).port}/blob`,
    addrs,
  }
  process.send?.(ready)
  await new Promise<void>((resolve) => process.once('message', () => resolve()))
  server.close()
  https.close()
  for (const stop of stops) await stop()
  process.disconnect()
}

if (process.send !== undefined && import.meta.main) await main()
