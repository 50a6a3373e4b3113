/** `curl -o /dev/null` as the client of every row: what a user would try first. */
import { spawn } from 'node:child_process'

/** What `curl -w` prints after the body, one line. */
export const CURL_WRITE_OUT = '%{http_code} %{size_download} %{time_starttransfer} %{time_total}\\n'

export interface CurlResult {
  readonly status: number
  readonly bytes: number
  /** Seconds from the start to the first body byte. */
  readonly ttfbS: number
  readonly totalS: number
}

export function parseCurlWriteOut(text: string): CurlResult {
  const fields = text.trim().split(/\s+/)
  if (fields.length !== 4) throw new Error(`unexpected curl output: ${JSON.stringify(text)}`)
  const [status, bytes, ttfbS, totalS] = fields.map(Number) as [number, number, number, number]
  if (![status, bytes, ttfbS, totalS].every(Number.isFinite)) throw new Error(`unexpected curl output: ${text}`)
  return { status, bytes, ttfbS, totalS }
}

/** GETs `url` into /dev/null; rejects unless the answer is 200 with `expectBytes` bytes. */
export function curlGet(url: string, expectBytes: number): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-o', '/dev/null', '-w', CURL_WRITE_OUT, url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`curl ${url} exited ${code}: ${err.trim()}`))
      try {
        const r = parseCurlWriteOut(out)
        if (r.status !== 200 || r.bytes !== expectBytes) {
          return reject(new Error(`curl ${url}: HTTP ${r.status}, ${r.bytes} bytes (expected ${expectBytes})`))
        }
        resolve(r)
      } catch (e) {
        reject(e as Error)
      }
    })
  })
}
