import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Cleanup, removeDir, run, runOk, tempDir } from '../../harness/e2e/index.ts'

const SCRIPT = fileURLToPath(new URL('../../deploy/kubernetes/overlays/sites/node-zone.mjs', import.meta.url))
const TOKEN = 'sa-token-for-test'

/**
 * overlays/sites' init container script against a stand-in API server over real TLS, with a service-account
 * directory (token, ca.crt) laid out as the kubelet mounts it.
 */
describe('node-zone.mjs (the sites overlay reading its node zone)', () => {
  const cleanup = new Cleanup()
  let dir: string
  let server: Server
  const seen: { path: string; authorization: string | undefined }[] = []
  const nodes: Record<string, object> = {
    'node-a': { metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/zone': 'store-17' } } },
    'node-b': { metadata: { name: 'node-b', labels: {} } },
  }

  beforeAll(async () => {
    dir = cleanup.add(await tempDir('node-zone'), removeDir)
    await runOk('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
      ...['-subj', '/CN=kubernetes', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'ca.crt')],
    ])
    await writeFile(join(dir, 'token'), `${TOKEN}\n`)
    server = createServer(
      { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'ca.crt')) },
      (req, res) => {
        seen.push({ path: req.url ?? '', authorization: req.headers.authorization })
        const name = /^\/api\/v1\/nodes\/([^/]+)$/.exec(req.url ?? '')?.[1]
        const node = name === undefined ? undefined : nodes[name]
        if (req.headers.authorization !== `Bearer ${TOKEN}`) res.writeHead(401).end('{}')
        else if (node === undefined) res.writeHead(404).end('{}')
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(node))
      },
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanup.add(server, (s) => new Promise((resolve) => s.close(() => resolve())))
  })
  afterAll(() => cleanup.run())

  const zoneOf = async (node: string) => {
    const out = join(dir, `site-${node}`)
    const r = await run(process.execPath, [SCRIPT, out], {
      env: {
        NODE_NAME: node,
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: String((server.address() as AddressInfo).port),
        SHOAL_SA_DIR: dir,
      },
    })
    const zone = r.code === 0 ? await readFile(out, 'utf8') : undefined
    return { code: r.code, zone, stderr: r.stderr }
  }

  it("writes the node's zone label, with the service account's token, over TLS checked against its CA", async () => {
    expect(await zoneOf('node-a')).toMatchObject({ code: 0, zone: 'store-17' })
    expect(seen.at(-1)).toEqual({ path: '/api/v1/nodes/node-a', authorization: `Bearer ${TOKEN}` })
  })

  it('writes an empty site for a node without the label, and fails in one line when the node cannot be read', async () => {
    expect(await zoneOf('node-b')).toMatchObject({ code: 0, zone: '' })
    const missing = await zoneOf('node-c')
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe('node-zone: GET node node-c: HTTP 404\n')
  })
})
