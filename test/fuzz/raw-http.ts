import net from 'node:net'

export interface RawResponse {
  readonly status: number
  readonly headers: ReadonlyMap<string, string>
  readonly body: Buffer
}

/**
 * Writes `request` byte for byte on a fresh TCP connection and reads one response. An HTTP client
 * library would normalise or refuse most of what the fuzz suite sends (`..`, `%2f`, NUL, bare
 * LF, lying Content-Length), so this one does not touch the bytes. Resolves `undefined` when the
 * server closed without answering.
 */
export function rawRequest(
  port: number,
  request: Buffer | string | Iterable<Buffer>,
  opts: { head?: boolean; timeoutMs?: number; halfClose?: boolean } = {},
): Promise<RawResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const parts: Buffer[] = []
    let got = 0
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete response within ${opts.timeoutMs ?? 10_000} ms (got ${got} bytes)`))
    }, opts.timeoutMs ?? 10_000)
    const done = () => {
      clearTimeout(timer)
      try {
        resolve(parseResponse(Buffer.concat(parts), opts.head === true))
      } catch (err) {
        reject(err as Error)
      }
    }
    socket.on('data', (b: Buffer) => {
      parts.push(b)
      got += b.byteLength
      // Stop as soon as one whole response is in: keep-alive servers would hold the socket open.
      const res = tryParse(Buffer.concat(parts), opts.head === true)
      if (res !== undefined) {
        clearTimeout(timer)
        socket.destroy()
        resolve(res)
      }
    })
    // A reset after the answer is normal when the server refuses a request it has not fully read.
    socket.on('error', () => {})
    socket.on('close', done)
    void write(socket, request).then(
      () => opts.halfClose === true && socket.end(),
      () => {},
    )
  })
}

/** Writes with backpressure, so a body of any size costs this side one piece at a time. */
async function write(socket: net.Socket, request: Buffer | string | Iterable<Buffer>): Promise<void> {
  if (typeof request === 'string' || Buffer.isBuffer(request)) {
    socket.write(request)
    return
  }
  for (const piece of request) {
    if (socket.destroyed) return
    if (!socket.write(piece)) await new Promise((r) => socket.once('drain', r))
  }
}

function parseResponse(buf: Buffer, head: boolean): RawResponse | undefined {
  if (buf.byteLength === 0) return undefined
  const res = tryParse(buf, head, true)
  if (res === undefined)
    throw new Error(`truncated response: ${JSON.stringify(buf.subarray(0, 300).toString('latin1'))}`)
  return res
}

/** One full response from the front of `buf`, or undefined while bytes are missing. */
function tryParse(buf: Buffer, head: boolean, closed = false): RawResponse | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')
  if (m === null) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`)
  const status = Number(m[1])
  const headers = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim())
  }
  const rest = buf.subarray(end + 4)
  // An interim answer (100 Continue) precedes the real one.
  if (status >= 100 && status < 200) return tryParse(rest, head, closed)
  if (head || status === 204 || status === 304) {
    return { status, headers, body: Buffer.alloc(0) }
  }
  if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') {
    const body = dechunk(rest)
    return body === undefined ? undefined : { status, headers, body }
  }
  const length = headers.get('content-length')
  if (length !== undefined) {
    const n = Number(length)
    if (rest.byteLength < n) return undefined
    return { status, headers, body: rest.subarray(0, n) }
  }
  return closed ? { status, headers, body: rest } : undefined
}

function dechunk(buf: Buffer): Buffer | undefined {
  const out: Buffer[] = []
  let pos = 0
  for (;;) {
    const eol = buf.indexOf('\r\n', pos)
    if (eol === -1) return undefined
    const size = parseInt(buf.subarray(pos, eol).toString('latin1'), 16)
    if (!Number.isFinite(size)) throw new Error('bad chunk size')
    if (size === 0) return buf.indexOf('\r\n', eol + 2) === -1 ? undefined : Buffer.concat(out)
    if (buf.byteLength < eol + 2 + size + 2) return undefined
    out.push(buf.subarray(eol + 2, eol + 2 + size))
    pos = eol + 2 + size + 2
  }
}
