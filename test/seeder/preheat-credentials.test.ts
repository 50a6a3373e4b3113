import { createServer, type Server } from 'node:http'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../shared/log/index.ts'
import { type SeederRig, startSeederRig, waitJob } from './seeder-harness.ts'

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
const ALICE = { username: 'alice', password: 'alice-s3cret-pw' }
const BOB = { username: 'bob', password: 'bob-wrong-pw' }

/**
 * A Basic-auth registry in front of the demo origin: alice may read everything, bob manifests only (a blob is
 * not his to read); every Authorization seen is kept.
 */
async function authFront(originUrl: string, seen: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const auth = req.headers.authorization ?? ''
    seen.push(`${req.method} ${req.url} ${auth}`)
    const bobOk = auth === basic(BOB.username, BOB.password) && req.url?.includes('/manifests/') === true
    if (req.url !== '/v2/' && auth !== basic(ALICE.username, ALICE.password) && !bobOk) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' })
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
      return
    }
    void fetch(`${originUrl}${req.url}`, {
      method: req.method,
      headers: req.headers.accept === undefined ? {} : { accept: req.headers.accept },
    }).then(async (up) => {
      const headers: Record<string, string> = {}
      up.headers.forEach((v, k) => (headers[k] = v))
      res.writeHead(up.status, headers)
      res.end(Buffer.from(await up.arrayBuffer()))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

let rig: SeederRig | undefined
afterEach(async () => {
  await rig?.stop()
  rig = undefined
})

describe('preheat with credentials', () => {
  it("uses the job's credentials for its origin fetches only, never shows or logs them, and proves each job's access", async () => {
    const seen: string[] = []
    let logs = ''
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs += chunk.toString()
        done()
      },
    })
    rig = await startSeederRig({
      front: (url) => authFront(url, seen),
      log: createLogger({ level: 'debug', destination: sink }),
    })
    const p = rig.seeder.preheater

    // Without credentials the origin refuses: the job fails with its status, the seeder lives on.
    const anon = await waitJob(rig, p.submit('demo/multi:v1', ['linux/amd64']).id)
    expect(anon.state).toBe('failed')
    expect(anon.originStatus).toBe(401)

    const a = p.submit('demo/multi:v1', ['linux/amd64'], { credentials: ALICE })
    // Same image, same credentials while running: merged. Other credentials: a job of its own.
    expect(p.submit('demo/multi:v1', ['linux/amd64'], { credentials: ALICE })).toEqual({ id: a.id, merged: true })
    const done = await waitJob(rig, a.id)
    expect(done.state).toBe('done')
    const blobGets = seen.filter((s) => s.startsWith('GET /v2/demo/multi/blobs/'))
    expect(blobGets.length).toBe(done.layers.length)
    for (const s of blobGets) expect(s.endsWith(basic(ALICE.username, ALICE.password))).toBe(true)

    // Bob's job reads the manifest and finds every blob already pulled here, yet his credentials must read the
    // blobs themselves: they do not, so it fails (without the HEAD proof it would report done).
    const b = p.submit(`demo/multi@${rig.image.root.digest}`, ['linux/amd64'], { credentials: BOB })
    expect(b.merged).toBe(false)
    const bob = await waitJob(rig, b.id)
    expect(bob.state).toBe('failed')
    expect(bob.originStatus).toBe(401)
    expect(bob.error).toMatch(/401/)
    expect(
      seen.some((s) => s.startsWith('HEAD /v2/demo/multi/blobs/') && s.endsWith(basic(BOB.username, BOB.password))),
    ).toBe(true)
    // Alice again: proven by HEAD, nothing fetched twice.
    seen.length = 0
    const c = p.submit(`demo/multi@${rig.image.root.digest}`, ['linux/amd64'], { credentials: ALICE })
    expect((await waitJob(rig, c.id)).state).toBe('done')
    expect(seen.some((s) => s.startsWith('HEAD /v2/demo/multi/blobs/'))).toBe(true)
    expect(seen.some((s) => s.startsWith('GET /v2/demo/multi/blobs/'))).toBe(false)

    const status = JSON.stringify([p.get(a.id), p.get(b.id), p.get(c.id)])
    const res = await fetch(`${rig.seeder.apiUrl}/api/v1/preheat/${a.id}`)
    const shown = `${status}${await res.text()}`
    for (const secret of [ALICE.password, BOB.password, 'Basic ', basic(ALICE.username, ALICE.password)]) {
      expect(shown).not.toContain(secret)
      expect(logs).not.toContain(secret)
    }
    expect(logs).toContain('preheated image')
  })

  it('refuses malformed credentials with a reason that does not quote them', async () => {
    rig = await startSeederRig()
    for (const credentials of [
      'alice:pw',
      { username: 'alice' },
      { username: 'a:b', password: 'pw-hidden' },
      { token: 'two words-hidden' },
      { token: 't', username: 'u', password: 'p' },
    ]) {
      const res = await fetch(`${rig.seeder.apiUrl}/api/v1/preheat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: 'demo/multi:v1', credentials }),
      })
      expect(res.status, JSON.stringify(credentials)).toBe(400)
      const text = await res.text()
      expect(text).toMatch(/credentials/)
      expect(text).not.toContain('hidden')
    }
  })
})
