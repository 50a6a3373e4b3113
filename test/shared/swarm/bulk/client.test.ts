import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { digestOf } from '../../../../shared/oci/index.ts'
import { TokenBucket } from '../../../../shared/rate/token-bucket.ts'
import {
  BulkClient,
  type BulkCredentials,
  type BulkTarget,
  BulkTicketRejectedError,
  createBulkCredentials,
} from '../../../../shared/swarm/bulk/index.ts'
import { InvalidMessageError } from '../../../../shared/swarm/wire/errors.ts'

const digest = digestOf(Buffer.from('bulk-client'))
const TOKEN = 'a'.repeat(43)
const BODY = Buffer.alloc(200 * 1024, 7)

/** An HTTPS server with a libp2p certificate that answers each path as the test scripts it, lies included. */
let server: Server
let connections = 0
let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end(BODY)
let serverCreds: BulkCredentials
let clientCreds: BulkCredentials
let target: BulkTarget

beforeAll(async () => {
  serverCreds = await createBulkCredentials(await generateKeyPair('Ed25519'))
  clientCreds = await createBulkCredentials(await generateKeyPair('Ed25519'))
  server = createServer({ cert: serverCreds.cert, key: serverCreds.key, minVersion: 'TLSv1.3' }, (req, res) =>
    answer(req, res),
  )
  server.on('secureConnection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  target = { peer: serverCreds.peerId, host: '127.0.0.1', port, token: TOKEN }
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

const clients: BulkClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()))
  answer = (_req, res) => res.end(BODY)
})

function client(connectionsPerPeer = 1): BulkClient {
  const c = new BulkClient({ credentials: clientCreds, connectionsPerPeer })
  clients.push(c)
  return c
}

const opts = (extra: Partial<Parameters<BulkClient['getChunk']>[3]> = {}) => ({
  maxBytes: BODY.byteLength,
  signal: AbortSignal.timeout(10_000),
  ...extra,
})

describe('BulkClient.getChunk', () => {
  it('keeps one TLS connection for chunk after chunk (keep-alive), whatever the answers', async () => {
    const c = client(1)
    const before = connections
    const statuses = [200, 404, 200, 503, 200]
    let n = 0
    answer = (_req, res) => {
      const status = statuses[n++ % statuses.length]!
      if (status === 200) res.end(BODY)
      else {
        res.writeHead(status, { 'content-length': '0' })
        res.end()
      }
    }
    const got = []
    for (let i = 0; i < statuses.length; i++) got.push(await c.getChunk(target, digest, i, opts()))
    expect(got.map((g) => (typeof g === 'string' ? g : Buffer.from(g.bytes).equals(BODY)))).toEqual([
      true,
      'none',
      true,
      'busy',
      true,
    ])
    expect(connections - before).toBe(1)
  })

  it('refuses a chunk announced longer than allowed before reading its body', async () => {
    await expect(client().getChunk(target, digest, 0, opts({ maxBytes: BODY.byteLength - 1 }))).rejects.toThrow(
      InvalidMessageError,
    )
  })

  it('fails a body cut short, and a refused ticket', async () => {
    answer = (_req, res) => {
      res.writeHead(200, { 'content-length': String(BODY.byteLength) })
      res.write(BODY.subarray(0, 1000), () => res.destroy())
    }
    await expect(client().getChunk(target, digest, 0, opts())).rejects.toThrow()
    answer = (_req, res) => {
      res.writeHead(403, { 'content-length': '0' })
      res.end()
    }
    await expect(client().getChunk(target, digest, 0, opts())).rejects.toThrow(BulkTicketRejectedError)
  })

  it('rejects with the signal reason as soon as it aborts mid-body, reporting progress until then', async () => {
    answer = (_req, res) => {
      res.writeHead(200, { 'content-length': String(BODY.byteLength) })
      res.write(BODY.subarray(0, 1000))
    }
    const ac = new AbortController()
    const progress: number[] = []
    const pending = client().getChunk(
      target,
      digest,
      0,
      opts({
        signal: ac.signal,
        onProgress: (n) => {
          progress.push(n)
          ac.abort(new Error('enough'))
        },
      }),
    )
    await expect(pending).rejects.toThrow('enough')
    expect(progress).toEqual([1000])
  })

  it('takes the chunk from a throttled bucket before the body, and still gets every byte', async () => {
    const bucket = new TokenBucket({ bytesPerSecond: 1024 * 1024, burstBytes: 64 * 1024 })
    const t0 = performance.now()
    const res = await client().getChunk(target, digest, 0, opts({ bucket }))
    expect(typeof res !== 'string' && Buffer.from(res.bytes).equals(BODY)).toBe(true)
    // 200 KiB at 1 MiB/s with a 64 KiB burst: the take waits for about 130 ms of tokens.
    expect(performance.now() - t0).toBeGreaterThan(100)
  })
})
