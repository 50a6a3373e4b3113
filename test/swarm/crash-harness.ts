import { type ChildProcess, spawn } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { type Digest, digestOf } from '../../shared/oci/digest.ts'
import { TokenBucket } from '../../shared/rate/index.ts'
import { seededRandom } from '../../shared/swarm/scheduler/index.ts'

const SHOAL_BIN = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url))

/** Deterministic bytes, fast enough for tens of MiB: an AES-CTR keystream keyed by the seed. */
export function seededBytes(size: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()])
}

/** A seeded PRNG, so a failing run can be replayed with the same kill schedule. */
export const prng = seededRandom

export interface TestBlob {
  readonly digest: Digest
  readonly bytes: Buffer
}

export function testBlob(size: number, seed: string): TestBlob {
  const bytes = seededBytes(size, seed)
  return { digest: digestOf(bytes), bytes }
}

/** One blob GET the origin answered: where it started and how many body bytes it handed to the socket. */
export interface OriginBlobRequest {
  readonly digest: Digest
  readonly start: number
  readonly ranged: boolean
  sent: number
  done: boolean
}

export interface CrashOrigin {
  readonly url: string
  readonly requests: OriginBlobRequest[]
  /** Body bytes of blob GETs handed to sockets, all requests together. */
  readonly sentBytes: () => number
  /** Resolves once sentBytes() reaches `total` (checked as bytes go out). */
  whenSent(total: number): Promise<void>
  inFlight(): number
  close(): Promise<void>
}

export interface CrashOriginOptions {
  /** `name` → blobs it holds. */
  readonly repos: ReadonlyMap<string, readonly TestBlob[]>
  /** `name:tag` → an image manifest (its config and layers must be among the repo's blobs). */
  readonly manifests?: ReadonlyMap<string, { readonly mediaType: string; readonly bytes: Buffer }>
  /** Each blob response is paced to this many bytes/s, so downloads last long enough to be killed. */
  readonly bytesPerSecond: number
}

const PIECE_BYTES = 16 * 1024

/**
 * A minimal read-only `/v2/` origin that counts what it sends: blob GETs (with `Range: bytes=N-`), HEADs, and
 * manifests by tag or digest. Each blob response has its own rate; it stops writing when the socket closes.
 */
export async function startCrashOrigin(opts: CrashOriginOptions): Promise<CrashOrigin> {
  const requests: OriginBlobRequest[] = []
  let sent = 0
  const waiters: { total: number; resolve: () => void }[] = []
  const blobIndex = new Map<string, TestBlob>()
  for (const [name, blobs] of opts.repos) for (const b of blobs) blobIndex.set(`${name}@${b.digest}`, b)
  const manifestsByDigest = new Map<string, { mediaType: string; bytes: Buffer }>()
  for (const m of opts.manifests?.values() ?? []) manifestsByDigest.set(digestOf(m.bytes), m)

  const noted = (n: number): void => {
    sent += n
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!
      if (sent >= w.total) {
        waiters.splice(i, 1)
        w.resolve()
      }
    }
  }

  const notFound = (res: ServerResponse, code: string): void => {
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] }))
  }

  const serveBlob = async (req: IncomingMessage, res: ServerResponse, blob: TestBlob): Promise<void> => {
    const size = blob.bytes.byteLength
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    const start = m === null ? 0 : Number(m[1])
    if (start > size || (m !== null && start === size && size > 0)) {
      res.writeHead(416, { 'content-range': `bytes */${size}` })
      res.end()
      return
    }
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(size - start),
      'docker-content-digest': blob.digest,
      'accept-ranges': 'bytes',
    }
    if (m !== null) headers['content-range'] = `bytes ${start}-${size - 1}/${size}`
    res.writeHead(m === null ? 200 : 206, headers)
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    const record: OriginBlobRequest = { digest: blob.digest, start, ranged: m !== null, sent: 0, done: false }
    requests.push(record)
    const bucket = new TokenBucket({ bytesPerSecond: opts.bytesPerSecond, burstBytes: PIECE_BYTES })
    const closed = new AbortController()
    res.once('close', () => closed.abort())
    try {
      for (let pos = start; pos < size; pos += PIECE_BYTES) {
        const piece = blob.bytes.subarray(pos, Math.min(size, pos + PIECE_BYTES))
        await bucket.take(piece.byteLength, { signal: closed.signal })
        if (res.destroyed) return
        const flowing = res.write(piece)
        record.sent += piece.byteLength
        noted(piece.byteLength)
        if (!flowing) await once(res, 'drain', { signal: closed.signal })
      }
      res.end()
    } catch {
      // The client went away (a killed agent): nothing left to send to.
    } finally {
      record.done = true
    }
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('docker-distribution-api-version', 'registry/2.0')
    const path = (req.url ?? '').split('?')[0]!
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405)
      res.end()
      return
    }
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
      return
    }
    const blob = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path)
    if (blob !== null) {
      const found = blobIndex.get(`${blob[1]}@${blob[2]}`)
      if (found === undefined) notFound(res, 'BLOB_UNKNOWN')
      else void serveBlob(req, res, found)
      return
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path)
    if (manifest !== null) {
      const ref = manifest[2]!
      const m = ref.startsWith('sha256:') ? manifestsByDigest.get(ref) : opts.manifests?.get(`${manifest[1]}:${ref}`)
      if (m === undefined) {
        notFound(res, 'MANIFEST_UNKNOWN')
        return
      }
      res.writeHead(200, {
        'content-type': m.mediaType,
        'content-length': String(m.bytes.byteLength),
        'docker-content-digest': digestOf(m.bytes),
      })
      res.end(req.method === 'HEAD' ? undefined : m.bytes)
      return
    }
    notFound(res, 'NAME_UNKNOWN')
  }

  const server: Server = createServer(handle)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sentBytes: () => sent,
    whenSent(total) {
      if (sent >= total) return Promise.resolve()
      const { promise, resolve } = Promise.withResolvers<void>()
      waiters.push({ total, resolve })
      return promise
    },
    inFlight: () => requests.filter((r) => !r.done).length,
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

/** An OCI image manifest over `config` and `layers`, as the origin serves it. */
export function imageManifest(config: TestBlob, layers: readonly TestBlob[]): { mediaType: string; bytes: Buffer } {
  const mediaType = 'application/vnd.oci.image.manifest.v1+json'
  const descriptor = (b: TestBlob, type: string) => ({ mediaType: type, digest: b.digest, size: b.bytes.byteLength })
  const doc = {
    schemaVersion: 2,
    mediaType,
    config: descriptor(config, 'application/vnd.oci.image.config.v1+json'),
    layers: layers.map((l) => descriptor(l, 'application/vnd.oci.image.layer.v1.tar')),
  }
  return { mediaType, bytes: Buffer.from(JSON.stringify(doc)) }
}

export interface ShoalProcess {
  readonly child: ChildProcess
  /** The agent's /v2/ URL, or the seeder's API URL. */
  readonly url: string
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>
  /** SIGTERM (a graceful stop), then waits for the exit; returns the exit code. */
  stop(): Promise<number | null>
  output(): string
}

const live = new Set<ChildProcess>()
// A failed test must not leave a node behind; 'exit' handlers may only do synchronous work.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/**
 * Runs `shoal agent|seeder ARGS` as a real child process (the Node running the tests, which is the project's) and
 * resolves once it logs that it listens, with the URL from that log line.
 */
export async function spawnShoal(kind: 'agent' | 'seeder', args: readonly string[]): Promise<ShoalProcess> {
  const child = spawn(process.execPath, [SHOAL_BIN, kind, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      resolve({ code, signal })
    })
  })
  let tail = ''
  const keep = (s: string): void => {
    tail = (tail + s).slice(-4000)
  }
  const ready = Promise.withResolvers<string>()
  let pending = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    keep(s)
    pending += s
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) {
      if (!line.startsWith('{')) continue
      const rec = JSON.parse(line) as { msg?: string; url?: string; api?: string }
      if (kind === 'agent' && rec.msg === 'agent listening' && rec.url !== undefined) ready.resolve(rec.url)
      if (kind === 'seeder' && rec.msg === 'seeder ready' && rec.api !== undefined) ready.resolve(rec.api)
    }
  })
  child.stderr!.setEncoding('utf8').on('data', keep)
  void exited.then(({ code, signal }) => ready.reject(new Error(`shoal ${kind} exited (${code ?? signal}): ${tail}`)))
  const url = await ready.promise
  return {
    child,
    url,
    exited,
    async kill() {
      child.kill('SIGKILL')
      await exited
    },
    async stop() {
      child.kill('SIGTERM')
      return (await exited).code
    },
    output: () => tail,
  }
}
