/** Where a CLI command writes; tests pass buffers, `main` passes the process streams. */
export interface CliIo {
  readonly stdout: { write(s: string): unknown; readonly isTTY?: boolean }
  readonly stderr: { write(s: string): unknown }
  readonly fetch?: typeof fetch
  readonly signal?: AbortSignal
}

/** Bad usage that commander cannot see (a bad count, an unreadable file): one line on stderr, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly code = 'USAGE'
}

export function httpBase(value: string, flag: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`--${flag}: expected http://HOST:PORT`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--${flag}: expected http(s)://`)
  return url.href.replace(/\/+$/, '')
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`
}

export function shortDigest(d: string): string {
  const i = d.indexOf(':')
  return i < 0 ? d.slice(0, 12) : d.slice(i + 1, i + 13)
}
