import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface UploadOrigin {
  readonly url: string
  /** Every request target the origin received, as sent. */
  readonly paths: string[]
  /** Body bytes received per upload id. */
  readonly uploaded: Map<string, number>
  close(): Promise<void>
}

const UPLOAD_RE = /^\/v2\/(.+)\/blobs\/uploads\/([^/?]*)(\?.*)?$/

/**
 * An origin that accepts pushes (drains and counts their bodies, never buffers them) and hands
 * every read to a backing registry. The demo origin refuses writes, so push passthrough needs this.
 */
export async function startUploadOrigin(backing: string): Promise<UploadOrigin> {
  const paths: string[] = []
  const uploaded = new Map<string, number>()
  let next = 0
  const backingUrl = new URL(backing)
  const server = http.createServer((req, res) => {
    const target = req.url ?? ''
    paths.push(target)
    const m = UPLOAD_RE.exec(target)
    if (req.method === 'GET' || req.method === 'HEAD') {
      const up = http.request(
        { host: backingUrl.hostname, port: backingUrl.port, method: req.method, path: target, headers: req.headers },
        (ures) => {
          res.writeHead(ures.statusCode ?? 502, ures.headers)
          ures.pipe(res)
        },
      )
      up.on('error', () => res.destroy())
      up.end()
      return
    }
    let n = 0
    req.on('data', (b: Buffer) => (n += b.byteLength))
    req.on('error', () => {})
    req.on('end', () => {
      if (m === null) {
        res.writeHead(405, { 'content-type': 'application/json' })
        res.end('{"errors":[{"code":"UNSUPPORTED","message":"not here"}]}')
        return
      }
      const [, name, id] = m as unknown as [string, string, string]
      if (req.method === 'POST' && id === '') {
        const fresh = `u${++next}`
        uploaded.set(fresh, 0)
        res.writeHead(202, { location: `/v2/${name}/blobs/uploads/${fresh}`, 'docker-upload-uuid': fresh })
        res.end()
        return
      }
      if (!uploaded.has(id)) {
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end('{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"upload unknown"}]}')
        return
      }
      uploaded.set(id, uploaded.get(id)! + n)
      const total = uploaded.get(id)!
      res.writeHead(req.method === 'PUT' ? 201 : 202, {
        location: `/v2/${name}/blobs/uploads/${id}`,
        range: `0-${Math.max(0, total - 1)}`,
      })
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    paths,
    uploaded,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
