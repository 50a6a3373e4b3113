import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { packagesLoadedBy } from '../../../harness/loaded-packages.ts'
import { NodeExchange, type WireRequest } from '../../../shared/origin/node-exchange.ts'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

const open: (() => void)[] = []
afterEach(() => {
  for (const close of open.splice(0)) close()
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<URL> {
  const server: Server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  open.push(() => server.close())
  open.push(() => server.closeAllConnections())
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`)
}

function exchange(): NodeExchange {
  const x = new NodeExchange({ connectTimeoutMs: 1_000 })
  open.push(() => x.stop())
  return x
}

const init = (o: Partial<WireRequest> = {}): WireRequest => ({
  method: 'GET',
  headers: {},
  signal: null,
  headersTimeoutMs: 1_000,
  bodyTimeoutMs: 1_000,
  ...o,
})

async function text(body: NodeJS.ReadableStream): Promise<string> {
  let s = ''
  for await (const chunk of body) s += String(chunk)
  return s
}

describe('NodeExchange', () => {
  it('gives header names in lower case and a repeated header as an array, as undici does', async () => {
    const url = await serve((_req, res) => {
      res.setHeader('WWW-Authenticate', ['Bearer realm="https://a/token"', 'Basic realm="x"'])
      res.setHeader('Docker-Content-Digest', 'sha256:ab')
      res.end('hello')
    })
    const res = await exchange().request(url, init())
    expect(res.statusCode).toBe(200)
    expect(res.headers['www-authenticate']).toEqual(['Bearer realm="https://a/token"', 'Basic realm="x"'])
    expect(res.headers['docker-content-digest']).toBe('sha256:ab')
    expect(await text(res.body)).toBe('hello')
  })

  it('hands out body pieces that each own their memory (what bodyOwned promises the blob pull)', async () => {
    const big = Buffer.alloc(4 << 20, 7)
    const url = await serve((_req, res) => res.end(big))
    const res = await exchange().request(url, init())
    let n = 0
    for await (const piece of res.body) {
      const b = piece as Buffer
      expect([b.byteOffset, b.buffer.byteLength]).toEqual([0, b.byteLength])
      n += b.byteLength
    }
    expect(n).toBe(big.byteLength)
  })

  it('sends the headers it is given and keeps the connection for the next request after a HEAD', async () => {
    const ports: number[] = []
    const agents: (string | undefined)[] = []
    const url = await serve((req, res) => {
      ports.push(req.socket.remotePort!)
      agents.push(req.headers['user-agent'])
      res.setHeader('content-length', '5')
      res.end(req.method === 'HEAD' ? undefined : 'hello')
    })
    const x = exchange()
    const head = await x.request(url, init({ method: 'HEAD', headers: { 'user-agent': 'shoal/test' } }))
    expect(head.headers['content-length']).toBe('5')
    expect(await text(head.body)).toBe('')
    const get = await x.request(url, init())
    expect(await text(get.body)).toBe('hello')
    expect(agents[0]).toBe('shoal/test')
    expect(ports).toHaveLength(2)
    expect(ports[1]).toBe(ports[0])
  })

  it('fails with the headers timeout when no answer comes', async () => {
    const url = await serve(() => {})
    await expect(exchange().request(url, init({ headersTimeoutMs: 50 }))).rejects.toMatchObject({
      code: 'UND_ERR_HEADERS_TIMEOUT',
    })
  })

  it('ends a body that falls silent for longer than the body timeout with an error', async () => {
    const url = await serve((_req, res) => {
      res.setHeader('content-length', '10')
      res.write('hello')
    })
    const res = await exchange().request(url, init({ bodyTimeoutMs: 50 }))
    await expect(text(res.body)).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' })
  })

  it('keeps a header named like an Object property as a header', async () => {
    const url = await serve((_req, res) => {
      res.setHeader('constructor', 'x')
      res.setHeader('__proto__', 'y')
      res.end()
    })
    const res = await exchange().request(url, init())
    await text(res.body)
    expect(res.headers['constructor']).toBe('x')
    expect(Object.getOwnPropertyDescriptor(res.headers, '__proto__')?.value).toBe('y')
  })

  it('stops waiting when its signal fires', async () => {
    const url = await serve(() => {})
    const ac = new AbortController()
    const p = exchange().request(url, init({ signal: ac.signal }))
    setTimeout(() => ac.abort(new Error('gone')), 20)
    await expect(p).rejects.toThrow('gone')
  })

  it('speaks TLS to an https origin and checks its certificate (a self-signed one is refused)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'node-exchange-'))
    open.push(() => void rm(dir, { recursive: true, force: true }))
    await promisify(execFile)('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'],
      ...['-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    ])
    const [key, cert] = await Promise.all([readFile(join(dir, 'key.pem')), readFile(join(dir, 'cert.pem'))])
    const server = createTlsServer({ key, cert }, (_req, res) => res.end('secret'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    open.push(() => server.close())
    const url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`)
    await expect(exchange().request(url, init())).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
  })

  it('refuses a connection like undici does: a code the retry rule knows', async () => {
    const url = await serve(() => {})
    open.splice(0, 2).forEach((close) => close())
    await new Promise((r) => setTimeout(r, 20))
    await expect(exchange().request(url, init())).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })
})

/** A child that makes an agent's origin requests (the base endpoint, a token, a HEAD, a manifest, a blob), then (with `upload`) an upload. */
function originRequests(upload: boolean): string {
  return `
    const { createServer } = await import('node:http')
    const server = createServer((req, res) => {
      if (req.url === '/v2/') {
        res.statusCode = 401
        res.setHeader('www-authenticate', 'Bearer realm="/token",service="s"')
        return res.end()
      }
      if (req.url.startsWith('/token')) return res.end(JSON.stringify({ token: 't' }))
      if (req.method === 'PUT') { req.resume(); res.statusCode = 201; return req.on('end', () => res.end()) }
      res.setHeader('content-type', 'application/vnd.oci.image.manifest.v1+json')
      res.end(req.method === 'HEAD' ? undefined : '{}')
    })
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    const { OriginClient } = await import(${JSON.stringify(`file://${ROOT}shared/origin/index.ts`)})
    const base = new URL('http://127.0.0.1:' + server.address().port)
    const upstream = { registry: base.host, baseUrl: base }
    const client = new OriginClient({ retry: { attempts: 1 } })
    const status = async (req) => {
      const r = await client.request(upstream, req)
      for await (const _ of r.body);
      return r.status
    }
    const blob = 'x/blobs/sha256:' + 'a'.repeat(64)
    const statuses = [
      await status({ method: 'GET', path: '' }),
      // Learns the Bearer realm from the base endpoint's 401, then fetches a token for these two.
      await status({ method: 'HEAD', path: blob }),
      await status({ method: 'GET', path: 'x/manifests/latest' }),
      await status({ method: 'GET', path: blob }),
      ...(${upload} ? [await status({ method: 'PUT', path: 'x/blobs/uploads/1', body: new Uint8Array(3) })] : []),
    ]
    if (statuses.join() !== ${JSON.stringify(upload ? '401,200,200,200,201' : '401,200,200,200')}) throw new Error('statuses ' + statuses)
    await client.stop()
    server.close()
  `
}

describe("an agent's origin requests", () => {
  it('do not load undici: the base endpoint, a token, an authorization HEAD, a manifest, a blob', async () => {
    expect(await packagesLoadedBy(originRequests(false), { cwd: ROOT })).not.toContain('undici')
  }, 60_000)

  it('an upload (a request with a body) does: the check sees undici when it is there', async () => {
    expect(await packagesLoadedBy(originRequests(true), { cwd: ROOT })).toContain('undici')
  }, 60_000)
})
