/** Where a CLI command writes; tests pass buffers, `main` passes the process streams. */
export interface CliIo {
  readonly stdout: { write(s: string): unknown; readonly isTTY?: boolean }
  readonly stderr: { write(s: string): unknown }
  readonly fetch?: typeof fetch
  readonly signal?: AbortSignal
}

export class UsageError extends Error {
  override name = 'UsageError'
  readonly code = 'USAGE'
}

/** `--flag VALUE` and `--flag=VALUE`; repeatable flags collect every value; the rest are positionals. */
export function parseFlags(
  argv: readonly string[],
  known: readonly string[],
): { flags: Map<string, string[]>; positionals: string[] } {
  const flags = new Map<string, string[]>()
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith('--')) {
      positionals.push(a)
      continue
    }
    const eq = a.indexOf('=')
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq)
    if (!known.includes(name)) throw new UsageError(`unknown flag --${name}`)
    const value = eq < 0 ? argv[++i] : a.slice(eq + 1)
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`)
    flags.set(name, [...(flags.get(name) ?? []), value])
  }
  return { flags, positionals }
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
