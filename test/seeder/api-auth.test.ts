import { X509Certificate } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import type { TLSSocket } from 'node:tls'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { request } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../cli/main.ts'
import { preheatMain } from '../../cli/preheat.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { ConfigError } from '../../shared/config/index.ts'
import { createBulkCredentials } from '../../shared/swarm/bulk/index.ts'
import { type SeederRig, startSeederRig, waitJob } from './seeder-harness.ts'

const TOKEN = 'preheat-secret-0123456789'
let dir: string
let rig: SeederRig | undefined
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-api-auth-'))
  await writeFile(join(dir, 'token'), `${TOKEN}\n`)
})
afterEach(async () => {
  await rig?.stop()
  rig = undefined
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const load = (argv: string[]) => loadSeederConfig({ argv, env: {}, readFile: () => '' })

async function post(url: string, body: unknown, authorization?: string) {
  const res = await request(`${url}/api/v1/preheat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify(body),
  })
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as Record<string, unknown> }
}

describe('seeder API token', () => {
  it('refuses to start on a non-loopback --api-listen without --api-token-file, unless --api-no-auth', () => {
    expect(() => load(['--api-listen', '0.0.0.0:7000'])).toThrow(ConfigError)
    expect(() => load(['--api-listen', '0.0.0.0:7000'])).toThrow(
      /^invalid config: api-token-file: --api-listen 0\.0\.0\.0:7000 is reachable from other hosts: give --api-token-file FILE/,
    )
    expect(() => load(['--api-listen', '[::]:7000'])).toThrow(ConfigError)
    expect(load(['--api-listen', '0.0.0.0:7000', '--api-no-auth']).apiTokenFile).toBeUndefined()
    expect(load(['--api-listen', '0.0.0.0:7000', '--api-token-file', '/t']).apiTokenFile).toBe('/t')
    for (const host of ['127.0.0.1', '127.1.2.3', '[::1]', 'localhost'])
      expect(load(['--api-listen', `${host}:7000`]).apiTokenFile).toBeUndefined()
  })

  it('`shoal seeder` says so in one line and exits 2, before anything starts', async () => {
    let err = ''
    const io = { stdout: { write: () => true }, stderr: { write: (s: string) => ((err += s), true) } }
    const code = await main(['seeder', '--api-listen', '0.0.0.0:7000', '--data', join(dir, 'never-created')], {
      io,
      env: {},
    })
    expect(code).toBe(2)
    expect(err.split('\n')).toHaveLength(2)
    expect(err).toMatch(/^shoal seeder: invalid config: api-token-file: .*--api-no-auth.*\n$/)
  })

  it('wants --api-tls-cert and --api-tls-key together', () => {
    expect(() => load(['--api-tls-cert', '/c'])).toThrow(/api-tls-key: give --api-tls-cert and --api-tls-key together/)
    expect(load(['--api-tls-cert', '/c', '--api-tls-key', '/k']).apiTls).toEqual({ certFile: '/c', keyFile: '/k' })
  })

  it('401s a preheat without the bearer token, with an error body; takes it with the token', async () => {
    rig = await startSeederRig({ seederArgs: ['--api-token-file', join(dir, 'token')] })
    const url = rig.seeder.apiUrl
    const none = await post(url, { image: 'demo/multi:v1' })
    expect(none.status).toBe(401)
    expect(none.headers['www-authenticate']).toBe('Bearer realm="shoal-seeder"')
    expect(none.body).toEqual({ error: 'this API needs Authorization: Bearer <token>' })
    const wrong = await post(url, { image: 'demo/multi:v1' }, `Bearer ${TOKEN.slice(0, -1)}x`)
    expect(wrong.status).toBe(401)
    expect(wrong.body).toEqual({ error: 'wrong token' })
    expect(rig.seeder.preheater.jobs()).toEqual([])

    const ok = await post(url, { image: 'demo/multi:v1' }, `Bearer ${TOKEN}`)
    expect(ok.status).toBe(202)
    const id = String(ok.body['id'])
    await waitJob(rig, id)
    const jobUrl = `${url}/api/v1/preheat/${id}`
    const anon = await request(jobUrl)
    expect(anon.statusCode).toBe(401)
    expect(await anon.body.json()).toEqual({ error: 'this API needs Authorization: Bearer <token>' })
    const job = await request(jobUrl, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(job.statusCode).toBe(200)
    expect(await job.body.json()).toMatchObject({ id, state: 'done' })
    // Operations routes stay open (probes, Prometheus); /status shows the job without its image.
    expect((await request(`${url}/healthz`)).statusCode).toBe(200)
    expect((await request(`${url}/readyz`)).statusCode).toBe(200)
    const page = await request(`${url}/ui`)
    expect(page.statusCode).toBe(200)
    expect(await page.body.text()).toContain('Preheat jobs')
    const status = await (await request(`${url}/status`)).body.text()
    expect(JSON.parse(status)).toMatchObject({ role: 'seeder', jobs: [{ id, state: 'done' }] })
    // The seeder's gauges: what it holds after the preheat, no pull under way, no peer.
    const metrics = await (await request(`${url}/metrics`)).body.text()
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1])
    expect(gauge('shoal_cache_bytes')).toBe((JSON.parse(status) as { cache: { bytes: number } }).cache.bytes)
    expect(gauge('shoal_cache_bytes')).toBeGreaterThan(0)
    expect(gauge('shoal_blobs_in_flight')).toBe(0)
    expect(gauge('shoal_peers_connected')).toBe(0)
    expect(status).not.toContain('demo/multi')
    expect(status).not.toContain('demo')
  })

  it('shoal preheat --token-file sends the token; without it the seeder refuses and the CLI says why', async () => {
    rig = await startSeederRig({ seederArgs: ['--api-token-file', join(dir, 'token')] })
    const run = async (extra: string[]) => {
      let out = ''
      let err = ''
      const io = {
        stdout: { isTTY: false, write: (t: string) => ((out += t), true) },
        stderr: { write: (t: string) => ((err += t), true) },
      }
      const code = await preheatMain(['--seeder', rig!.seeder.apiUrl, 'demo/multi:v1', ...extra], io, { pollMs: 10 })
      return { code, out, err }
    }
    const refused = await run([])
    expect(refused.code).toBe(1)
    expect(refused.err).toBe(
      'shoal preheat: seeder answered 401: this API needs Authorization: Bearer <token> (give --token-file)\n',
    )
    const done = await run(['--token-file', join(dir, 'token')])
    expect(done.err).toBe('')
    expect(done.code).toBe(0)
    expect(done.out).toMatch(/^preheated .*demo\/multi:v1: \d+ blobs/m)
    expect(done.out + done.err).not.toContain(TOKEN)
  })

  it('serves the API over HTTPS with --api-tls-cert/--api-tls-key', async () => {
    const { cert, key } = await createBulkCredentials(await generateKeyPair('Ed25519'))
    await writeFile(join(dir, 'cert.pem'), cert)
    await writeFile(join(dir, 'key.pem'), key)
    rig = await startSeederRig({
      seederArgs: ['--api-tls-cert', join(dir, 'cert.pem'), '--api-tls-key', join(dir, 'key.pem')],
    })
    expect(rig.seeder.apiUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const { status, peer } = await new Promise<{ status: number; peer: Buffer }>((resolve, reject) => {
      const req = httpsRequest(`${rig!.seeder.apiUrl}/healthz`, { rejectUnauthorized: false }, (res) => {
        const peer = (res.socket as TLSSocket).getPeerCertificate().raw
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, peer }))
      })
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(200)
    expect(peer.equals(new X509Certificate(cert).raw)).toBe(true)
  })
})

describe('seeder --site and the WAN caps', () => {
  it('reads them like the agent', () => {
    const c = load(['--site', 'core', '--wan-upload-rate', '2MB'])
    expect(c.site).toBe('core')
    expect(c.wanUploadRate).toBe(2_000_000)
    expect(c.wanDownloadRate).toBe(0)
    expect(() => load(['--site', 'no such'])).toThrow(/invalid config: site:/)
  })
})
