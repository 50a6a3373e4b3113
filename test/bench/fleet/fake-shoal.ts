/**
 * A stand-in for `bin/shoal.js` that speaks the fleet benchmark's CLI contract, so the Shoal scenarios'
 * plumbing (start, readiness, preheat, pulls through 127.0.0.1:5000, teardown) can be run before the real
 * swarm exists: `npm run bench -- --quick --shoal-bin test/bench/fleet/fake-shoal.ts`.
 *
 * It is no swarm: the seeder is a single-flight blob cache in front of the origin, and each agent forwards
 * manifests to the origin and blobs to the seeder's API.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { parseArgs } from 'node:util'

const HELP: Readonly<Record<string, string>> = {
  agent: '--listen --origin --data --p2p-listen --seeder --insecure-registry --site',
  seeder: '--origin --data --p2p-listen --api-listen --insecure-registry --site',
  preheat: '--seeder',
}

const [command, ...rest] = process.argv.slice(2)
if (command === undefined || !(command in HELP)) {
  process.stderr.write(`fake-shoal: unknown command ${String(command)}\n`)
  process.exit(2)
}
if (rest.includes('--help')) {
  process.stdout.write(`usage: fake-shoal ${command} ${HELP[command]}\n`)
  process.exit(0)
}
const { values, positionals } = parseArgs({
  // The real seeder's --api-no-auth means nothing to the fake.
  args: rest.filter((a) => a !== '--api-no-auth'),
  allowPositionals: true,
  options: Object.fromEntries(
    ['listen', 'origin', 'data', 'p2p-listen', 'seeder', 'api-listen', 'insecure-registry', 'site'].map((k) => [
      k,
      { type: 'string' } as const,
    ]),
  ),
})

function hostPort(value: string | undefined): { host: string; port: number } {
  const [host, port] = (value ?? '').split(':')
  if (host === undefined || port === undefined) throw new Error(`bad address ${value}`)
  return { host, port: Number(port) }
}

async function forward(res: ServerResponse, url: string, req: IncomingMessage): Promise<void> {
  const headers: Record<string, string> = {}
  if (typeof req.headers.accept === 'string') headers['accept'] = req.headers.accept
  const up = await fetch(url, { method: req.method ?? 'GET', headers })
  const out: Record<string, string> = {}
  for (const k of ['content-type', 'content-length', 'docker-content-digest']) {
    const v = up.headers.get(k)
    if (v !== null) out[k] = v
  }
  res.writeHead(up.status, out)
  if (up.body === null || req.method === 'HEAD') {
    res.end()
    return
  }
  await pipeline(Readable.fromWeb(up.body as WebReadableStream), res)
}

if (command === 'seeder') {
  const origin = values.origin ?? ''
  const blobs = new Map<string, Promise<Buffer>>()
  const blob = (name: string, digest: string) => {
    let p = blobs.get(digest)
    if (p === undefined) {
      p = fetch(`${origin}/v2/${name}/blobs/${digest}`).then(async (r) => Buffer.from(await r.arrayBuffer()))
      blobs.set(digest, p)
    }
    return p
  }
  const api = hostPort(values['api-listen'])
  createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ peerId: '12D3KooWFakeSeeder', multiaddrs: [values['p2p-listen']] }))
      return
    }
    const m = /^\/blobs\/(.+)\/(sha256:[a-f0-9]{64})$/.exec(url.pathname)
    if (m !== null) {
      blob(m[1]!, m[2]!).then(
        (b) => {
          res.writeHead(200, { 'content-length': b.byteLength })
          res.end(b)
        },
        () => {
          res.writeHead(502)
          res.end()
        },
      )
      return
    }
    if (url.pathname === '/preheat' && req.method === 'POST') {
      const ref = url.searchParams.get('ref') ?? ''
      const slash = ref.indexOf('/')
      const [name, tag] = ref.slice(slash + 1).split(':') as [string, string]
      const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
      fetch(`${origin}/v2/${name}/manifests/${tag}`, { headers: { accept } })
        .then((r) => r.json() as Promise<{ config: { digest: string }; layers: { digest: string }[] }>)
        .then((doc) => Promise.all([doc.config, ...doc.layers].map((d) => blob(name, d.digest))))
        .then(
          () => res.writeHead(200).end(),
          () => res.writeHead(502).end(),
        )
      return
    }
    res.writeHead(404).end()
  }).listen(api.port, api.host, () => process.stdout.write(`fake seeder 12D3KooWFakeSeeder on ${api.host}\n`))
} else if (command === 'agent') {
  const origin = values.origin ?? ''
  const seederIp = /\/ip4\/([^/]+)\//.exec(values.seeder ?? '')?.[1]
  const listen = hostPort(values.listen)
  createServer((req, res) => {
    const path = req.url ?? '/'
    const m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path)
    const target = m === null ? `${origin}${path}` : `http://${seederIp}:7000/blobs/${m[1]}/${m[2]}`
    forward(res, target, req).catch(() => {
      if (!res.headersSent) res.writeHead(502)
      res.end()
    })
  }).listen(listen.port, listen.host)
} else {
  const ref = positionals[0] ?? ''
  const r = await fetch(`${values.seeder}/preheat?ref=${encodeURIComponent(ref)}`, { method: 'POST' })
  process.exit(r.ok ? 0 : 1)
}
