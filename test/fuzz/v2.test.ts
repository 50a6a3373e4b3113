import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoOrigin, startDemoOrigin } from '../../shared/sample/origin.ts'
import { generateSampleImage, type SampleImage } from '../../shared/sample/index.ts'
import { type AgentProcess, spawnAgent } from './agent-process.ts'
import { type RawResponse, rawRequest } from './raw-http.ts'
import { startUploadOrigin, type UploadOrigin } from './upload-origin.ts'

// fast-check picks a random seed and prints it with the shrunk counterexample on failure;
// SHOAL_FUZZ_SEED=<seed> replays that run. The `examples` below run first, every time.
const SEED = process.env['SHOAL_FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['SHOAL_FUZZ_SEED']) }
const MAX_HEADER_BYTES = 16 * 1024 // the agent's http.maxHeaderSize
/** A push body far larger than the RSS the agent may grow by while passing it through. */
const PUSH_BODY_MIB = 256
const PUSH_RSS_BOUND_MIB = 160
const SECRET = `top-secret-${randomBytes(8).toString('hex')}`

let work: string
let sandbox: string
let image: SampleImage
let demo: DemoOrigin
let origin: UploadOrigin
let agent: AgentProcess
let before: Map<string, string>
let secretAtime: number
let atimeWorks = false
const responses: { what: string; res: RawResponse }[] = []

interface FuzzRequest {
  readonly method: string
  readonly target: string
  readonly headers: readonly (readonly [string, string])[]
  readonly body?: Buffer
  /** Declared Content-Length larger than the body sent; the client then half-closes. */
  readonly lie?: boolean
  readonly chunked?: boolean
}

function serialize(r: FuzzRequest): Buffer {
  const head = [`${r.method} ${r.target} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close']
  for (const [k, v] of r.headers) head.push(`${k}: ${v}`)
  const body = r.body ?? Buffer.alloc(0)
  if (r.chunked === true) {
    head.push('transfer-encoding: chunked')
    const chunk = body.byteLength === 0 ? '' : `${body.byteLength.toString(16)}\r\n`
    return Buffer.concat([
      Buffer.from(`${head.join('\r\n')}\r\n\r\n${chunk}`, 'latin1'),
      body,
      Buffer.from(body.byteLength === 0 ? '0\r\n\r\n' : '\r\n0\r\n\r\n'),
    ])
  }
  if (r.body !== undefined) head.push(`content-length: ${body.byteLength + (r.lie === true ? 1000 : 0)}`)
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), body])
}

async function send(r: FuzzRequest): Promise<RawResponse> {
  const res = await sendMaybe(r)
  if (res === undefined) throw new Error(`no answer to ${r.method} ${JSON.stringify(r.target)}`)
  return res
}

async function sendMaybe(r: FuzzRequest): Promise<RawResponse | undefined> {
  const res = await rawRequest(agent.port, serialize(r), {
    head: r.method === 'HEAD',
    halfClose: r.lie === true && r.body !== undefined,
  })
  if (res !== undefined) responses.push({ what: `${r.method} ${r.target}`, res })
  return res
}

/** What every answer the agent gives must satisfy, whatever was asked. */
function expectClean(r: FuzzRequest, res: RawResponse): void {
  const what = `${r.method} ${JSON.stringify(r.target.slice(0, 200))} -> ${res.status}`
  // The origin is healthy and nothing here is the origin's fault: no 5xx at all.
  expect(res.status, what).toBeLessThan(500)
  expect(res.body.includes(SECRET), what).toBe(false)
  if (res.status >= 400 && r.method !== 'HEAD') expectOciError(res, what)
}

function expectOciError(res: RawResponse, what: string): void {
  expect(res.headers.get('content-type') ?? '', what).toMatch(/^application\/json/)
  const doc = JSON.parse(res.body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] }
  expect(Array.isArray(doc.errors) && doc.errors.length > 0, `${what}: ${res.body.toString().slice(0, 300)}`).toBe(true)
  for (const e of doc.errors!) {
    expect(typeof e.code, what).toBe('string')
    expect(typeof e.message, what).toBe('string')
  }
}

/** path -> size/mtime/ctime/content hash of everything in the sandbox but the data dir. */
async function snapshot(dir: string, skip: string, out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (p === skip) continue
    const s = await stat(p)
    // The secret is never read here: its atime is the read detector.
    const hash =
      e.name === 'secret'
        ? 'unread'
        : e.isFile()
          ? createHash('sha256')
              .update(await readFile(p))
              .digest('hex')
          : e.isDirectory()
            ? 'dir'
            : 'other'
    out.set(p, `${s.size} ${s.mtimeMs} ${s.ctimeMs} ${hash}`)
    if (e.isDirectory()) await snapshot(p, skip, out)
  }
  return out
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'shoal-fuzz-'))
  sandbox = join(work, 'sandbox')
  await mkdir(join(sandbox, 'outside'), { recursive: true })
  await writeFile(join(sandbox, 'secret'), SECRET)
  await writeFile(join(sandbox, 'outside', 'keep'), SECRET)
  // relatime updates atime on a read when atime is older than mtime: an atime of 1970 turns it
  // into a read detector. Probe that the filesystem really does it before relying on it.
  const probe = join(work, 'probe')
  await writeFile(probe, 'x')
  await utimes(probe, 0, new Date())
  await readFile(probe)
  atimeWorks = (await stat(probe)).atimeMs > 0
  await utimes(join(sandbox, 'secret'), 0, new Date())
  secretAtime = (await stat(join(sandbox, 'secret'))).atimeMs
  before = await snapshot(sandbox, join(sandbox, 'data'))

  image = await generateSampleImage({ dir: join(work, 'image'), layers: 2, layerBytes: 96 * 1024, seed: 'fuzz' })
  demo = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
  origin = await startUploadOrigin(demo.url)
  // cwd inside the sandbox: a write to a relative path would land where the snapshot sees it.
  agent = await spawnAgent({ origin: origin.url, data: join(sandbox, 'data'), cwd: join(sandbox, 'outside') })
})

afterAll(async () => {
  await agent?.stop()
  await origin?.close()
  await demo?.stop()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

const knownBlob = () => image.blobs[0]!.digest
const fakeDigest = `sha256:${'0'.repeat(64)}`

const segment = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('demo', 'app', 'demo/app', 'manifests', 'blobs', 'uploads', 'tags', 'list') },
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '%2e%2e',
      '%2E%2E',
      '.%2e',
      '%2f',
      '%2F',
      '..%2f..%2fsecret',
      '..%2F..%2F..%2Fsecret',
      '..\\..\\secret',
      '..%5c..%5csecret',
      '%c0%ae%c0%ae',
      '%00',
      '%',
      '%zz',
      '%ff',
      '',
      'secret',
      '_catalog',
      'referrers',
      'v1',
      'UPPER',
      'a;b=c',
      '*',
      '~',
      'ü',
      'a..b',
      'a__b',
      'a--b',
      '-a',
    ),
  },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'sha256:KNOWN',
      fakeDigest,
      `sha512:${'a'.repeat(128)}`,
      `sha256:${'A'.repeat(64)}`,
      'sha256:1234',
      'sha256:../../secret',
      `sha256:${'0'.repeat(63)}/`,
      'md5:abc',
      `sha256:${'0'.repeat(64)}%00`,
    ),
  },
  // Raw bytes no client library would put on the wire.
  { weight: 2, arbitrary: fc.constantFrom('\x00', ' ', '\t', '\x7f', '\xff', '\r', '\n', 'a\x00b', '\x1b[31m') },
  { weight: 3, arbitrary: fc.stringMatching(/^[a-zA-Z0-9._%~:-]{1,24}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12, unit: 'binary-ascii' }) },
  { weight: 1, arbitrary: fc.constantFrom(300, 2100, 6000).map((n) => 'a'.repeat(n)) },
)

const target = fc
  .tuple(
    fc.constantFrom('/v2/', '/v2', '//v2/', '/v2//', '/', '/../v2/', '/v2/./', '/%76%32/', '/V2/', '/v2/../', '*', ''),
    fc.array(segment, { maxLength: 7 }),
    fc.constantFrom(
      '',
      '?ns=',
      '?ns=..%2f',
      '?ns=a/b',
      '?ns=%00',
      '?ns=localhost:0',
      '?ns=[::1',
      '?n=2&last=z',
      '?%zz',
    ),
  )
  .map(([prefix, segs, query]) => `${prefix}${segs.join('/')}${query}`.replaceAll('sha256:KNOWN', knownBlob()))

const headerPair = fc.oneof(
  fc.constantFrom(
    ['range', 'bytes=0-10'],
    ['range', 'bytes=-5'],
    ['range', 'bytes=99999999999999999999-'],
    ['range', 'bytes=5-1'],
    ['range', 'bytes=0-1,4-5'],
    ['range', 'pages=1-2'],
    ['range', 'bytes=-0'],
    ['range', '\xff\xfe'],
    ['accept', '*/*'],
    ['accept', 'application/vnd.oci.image.index.v1+json;q=\xff'],
    ['authorization', 'Basic !!!notbase64'],
    ['authorization', `Basic ${Buffer.from('\xff\xfe:\x00').toString('base64')}`],
    ['authorization', 'Bearer \xff\xfe'],
    ['authorization', 'Negotiate'],
    ['content-type', 'application/json'],
    ['content-type', '\x01'],
    ['expect', '100-continue'],
    ['transfer-encoding', 'gzip, chunked'],
    ['content-length', '-1'],
    ['content-length', '1, 2'],
    ['x-forwarded-for', '127.0.0.1'],
    ['upgrade', 'websocket'],
    ['bad header', 'x'],
    [' folded', 'x'],
    ['x-long', 'x'.repeat(4000)],
  ),
  fc.tuple(fc.stringMatching(/^[a-z-]{1,12}$/), fc.string({ maxLength: 40, unit: 'binary-ascii' })),
)

const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.record(
  {
    method: fc.constantFrom(
      'GET',
      'GET',
      'GET',
      'HEAD',
      'PUT',
      'POST',
      'PATCH',
      'DELETE',
      'OPTIONS',
      'TRACE',
      'CONNECT',
      'FOO',
      'get',
    ),
    target,
    headers: fc.array(headerPair, { maxLength: 4 }),
    body: fc.option(
      fc.constantFrom(0, 17, 70_000).map((n) => randomBytes(n)),
      { nil: undefined },
    ),
    lie: fc.boolean(),
    chunked: fc.boolean(),
  },
  { requiredKeys: ['method', 'target', 'headers'] },
)

describe('the /v2/ endpoint under hostile input', () => {
  it('answers every malformed request cleanly: never 5xx, always an OCI error body, never the secret', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        // A client that promised a body and hung up may find nobody answering; any other gets an answer.
        const res = r.lie === true && r.body !== undefined ? await sendMaybe(r) : await send(r)
        if (res !== undefined) expectClean(r, res)
      }),
      {
        ...SEED,
        numRuns: 1500,
        examples: [
          [{ method: 'GET', target: '/v2/../secret', headers: [] }],
          [{ method: 'GET', target: '/v2/..%2f..%2fsecret/blobs/' + fakeDigest, headers: [] }],
          [{ method: 'GET', target: '/v2/demo/%2e%2e/%2e%2e/secret/manifests/v1', headers: [] }],
          [{ method: 'GET', target: '/v2/demo/app/blobs/%zz', headers: [] }],
          [{ method: 'GET', target: '/v2/%', headers: [] }],
          [{ method: 'GET', target: '/v2/demo/app/manifests/v1\x00', headers: [] }],
          [{ method: 'CONNECT', target: '127.0.0.1:22', headers: [] }],
          [{ method: 'PUT', target: '/v2/demo/app/blobs/uploads/x', headers: [], body: randomBytes(100), lie: true }],
        ],
      },
    )
  })

  it('serves exactly the bytes a Range asks for, or 416 with an OCI body, for any Range header', async () => {
    const blob = image.blobs.find((b) => b.size > 64 * 1024)!
    const bytes = await readFile(blob.path)
    const size = bytes.byteLength
    const n = fc.oneof(fc.nat({ max: size + 10 }), fc.constantFrom(0, size - 1, size, 2 ** 53, 10 ** 20))
    const range = fc.oneof(
      fc.tuple(fc.option(n), fc.option(n)).map(([a, b]) => `bytes=${a ?? ''}-${b ?? ''}`),
      fc.tuple(n, n, n, n).map(([a, b, c, d]) => `bytes=${a}-${b},${c}-${d}`),
      fc
        .tuple(fc.constantFrom('bytes', 'Bytes', 'bytes ', 'items', ''), fc.constantFrom('=', ' = ', ':'), n, n)
        .map(([u, eq, a, b]) => `${u}${eq}${a}-${b}`),
      // Node itself refuses control characters in a header value (400); those are the first property's.
      fc
        .string({ maxLength: 30, unit: 'binary-ascii' })
        .filter((s) => [...s].every((c) => c === '\t' || (c >= ' ' && c !== '\x7f'))),
    )
    await fc.assert(
      fc.asyncProperty(range, fc.constantFrom('GET', 'HEAD'), async (value, method) => {
        const r: FuzzRequest = { method, target: `/v2/demo/app/blobs/${blob.digest}`, headers: [['range', value]] }
        const res = await send(r)
        expectClean(r, res)
        expect([200, 206, 416], value).toContain(res.status)
        const well = /^bytes=(\d+)-(\d+)$/.exec(value)
        // RFC 9110 defines Range for GET only: a HEAD may ignore it.
        if (method === 'GET' && well !== null && Number(well[1]) <= Number(well[2]) && Number(well[2]) < size) {
          expect(res.status, value).toBe(206)
          expect(res.headers.get('content-range'), value).toBe(`bytes ${well[1]}-${well[2]}/${size}`)
        }
        if (res.status === 416) expect(res.headers.get('content-range'), value).toBe(`bytes */${size}`)
        if (method === 'HEAD') return
        if (res.status === 200) expect(res.body.equals(bytes), value).toBe(true)
        if (res.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '')
          expect(m, value).not.toBeNull()
          const [s, e] = [Number(m![1]), Number(m![2])]
          expect(Number(m![3])).toBe(size)
          expect(s <= e && e < size, value).toBe(true)
          expect(res.body.equals(bytes.subarray(s, e + 1)), value).toBe(true)
        }
      }),
      { ...SEED, numRuns: 300 },
    )
  })

  it('refuses request heads over the limit with 431 and an OCI body, and takes those under it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 64 * 1024 }),
        fc.integer({ min: 1, max: 300 }),
        async (bytes, count) => {
          const each = Math.max(1, Math.floor(bytes / count))
          const headers = Array.from({ length: count }, (_, i) => [`x-h${i}`, 'v'.repeat(each)] as const)
          const r: FuzzRequest = { method: 'GET', target: '/v2/', headers }
          const res = await send(r)
          // Node counts the request line and header names and values, not the `: ` and CRLFs between.
          const counted = headers.reduce((n, [k, v]) => n + k.length + v.length, 40)
          const total = serialize(r).byteLength
          expectClean(r, res)
          if (counted > MAX_HEADER_BYTES + 256) expect(res.status, `${counted} bytes of head`).toBe(431)
          if (total < MAX_HEADER_BYTES - 256) expect(res.status, `${total} bytes of head`).toBe(200)
        },
      ),
      { ...SEED, numRuns: 60 },
    )
  })

  it('streams an oversized push body to the origin without holding it, and bodies on GETs change nothing', async () => {
    const start = await send({ method: 'POST', target: '/v2/demo/app/blobs/uploads/', headers: [] })
    expect(start.status).toBe(202)
    const location = start.headers.get('location')!
    expect(location).toMatch(/^\/v2\/demo\/app\/blobs\/uploads\/u\d+$/)
    const id = location.split('/').pop()!
    const rssBefore = agent.memory().rss
    const piece = randomBytes(1024 * 1024)
    const mib = PUSH_BODY_MIB
    function* body(): Generator<Buffer> {
      yield Buffer.from(
        `PATCH ${location} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: ${mib * 2 ** 20}\r\n\r\n`,
      )
      for (let i = 0; i < mib; i++) yield piece
    }
    const patch = await rawRequest(agent.port, body(), { timeoutMs: 60_000 })
    expect(patch?.status).toBe(202)
    expect(origin.uploaded.get(id)).toBe(mib * 2 ** 20)
    // Holding the body would cost all of it; streaming it costs buffers and allocator slack
    // (measured: peak +91 MiB for 384 MiB). The bound sits well under the body's size.
    expect(agent.memory().peakRss - rssBefore).toBeLessThan(PUSH_RSS_BOUND_MIB * 2 ** 20)
    const big = { byteLength: mib * 2 ** 20 }
    const chunked = await send({
      method: 'PATCH',
      target: location,
      headers: [],
      body: randomBytes(100_000),
      chunked: true,
    })
    expect(chunked.status).toBe(202)
    expect(origin.uploaded.get(id)).toBe(big.byteLength + 100_000)
    const get = await send({
      method: 'GET',
      target: `/v2/demo/app/manifests/v1`,
      headers: [['content-type', 'application/json']],
      body: Buffer.from('{"errors":'),
    })
    expect(get.status).toBe(200)
    expect(createHash('sha256').update(get.body).digest('hex')).toBe(image.root.digest.slice('sha256:'.length))
  })

  it('is still up, forwarded nothing that climbs out of /v2/, and touched nothing outside its data dir', async () => {
    expect(agent.alive()).toBe(true)
    const ok = await send({ method: 'GET', target: '/v2/', headers: [] })
    expect(ok.status).toBe(200)
    expect(agent.errorLines).toEqual([])
    expect(responses.length).toBeGreaterThan(500)
    // The fuzz reached the handlers and the origin, not only Node's parser.
    const statuses = new Set(responses.map((r) => r.res.status))
    for (const s of [200, 206, 400, 404, 416, 431]) expect(statuses, `some answer was ${s}`).toContain(s)
    for (const p of origin.paths) {
      const path = p.split('?')[0]!
      expect(path, p).toMatch(/^\/v2\//)
      expect(
        path.split('/').some((s) => s === '..' || s === '.'),
        p,
      ).toBe(false)
      expect(/%|\\/.test(path), p).toBe(false)
    }
    expect(await snapshot(sandbox, join(sandbox, 'data'))).toEqual(before)
    if (atimeWorks) expect((await stat(join(sandbox, 'secret'))).atimeMs, 'the secret file was read').toBe(secretAtime)
  })
})
