import { type CliIo, formatBytes, httpBase, parseFlags, shortDigest, UsageError } from './io.ts'

export const STATUS_USAGE = `usage: shoal status --agent URL | --seeder URL

Prints a node's /status as a summary: peers, cache, bytes by source, current downloads.`

interface Status {
  role?: unknown
  peerId?: unknown
  peers?: unknown
  cache?: { bytes?: unknown; blobs?: unknown; maxBytes?: unknown }
  bytes?: Record<string, unknown>
  limits?: Record<string, unknown>
  downloads?: { digest?: unknown; state?: unknown; size?: unknown; bytes?: unknown }[]
  pulling?: unknown[]
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0)

/** Renders a /status document (agent or seeder) as readable lines. */
export function formatStatus(url: string, s: Status): string {
  const out = [`${String(s.role ?? 'node')} ${url}`, `  peer id    ${String(s.peerId ?? '-')}`]
  out.push(`  peers      ${num(s.peers)}`)
  if (s.cache !== undefined) {
    const max = num(s.cache.maxBytes)
    out.push(
      `  cache      ${formatBytes(num(s.cache.bytes))} in ${num(s.cache.blobs)} blobs` +
        (max > 0 ? ` (quota ${formatBytes(max)})` : ''),
    )
  }
  const by = Object.entries(s.bytes ?? {}).filter(([, v]) => num(v) > 0)
  out.push(
    `  bytes in   ${by.length === 0 ? 'none yet' : by.map(([k, v]) => `${k} ${formatBytes(num(v))}`).join(', ')}`,
  )
  const limits = Object.entries(s.limits ?? {}).filter(([, v]) => num(v) > 0)
  if (limits.length > 0) out.push(`  limits     ${limits.map(([k, v]) => `${k} ${formatBytes(num(v))}/s`).join(', ')}`)
  const downloads = s.downloads ?? []
  const pulling = s.pulling ?? []
  if (downloads.length === 0 && pulling.length === 0) out.push('  downloads  none')
  for (const d of downloads) {
    const size = num(d.size)
    out.push(
      `  download   ${shortDigest(String(d.digest))} ${String(d.state)} ${formatBytes(num(d.bytes))}` +
        (size > 0 ? ` / ${formatBytes(size)}` : ''),
    )
  }
  for (const p of pulling) out.push(`  pulling    ${shortDigest(String(p))} from origin`)
  return `${out.join('\n')}\n`
}

/** `shoal status`: GET /status of one node and print it. Returns the exit code. */
export async function statusMain(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(`${STATUS_USAGE}\n`)
    return 0
  }
  let base: string
  try {
    const { flags, positionals } = parseFlags(argv, ['agent', 'seeder'])
    const urls = [...(flags.get('agent') ?? []), ...(flags.get('seeder') ?? [])]
    if (urls.length !== 1 || positionals.length > 0)
      throw new UsageError('give exactly one of --agent URL, --seeder URL')
    base = httpBase(urls[0]!, flags.has('agent') ? 'agent' : 'seeder')
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.stderr.write(`shoal status: ${err.message}\n${STATUS_USAGE}\n`)
    return 2
  }
  try {
    const res = await (io.fetch ?? fetch)(`${base}/status`, io.signal === undefined ? {} : { signal: io.signal })
    if (res.status !== 200) {
      io.stderr.write(`shoal status: ${base} answered ${res.status}\n`)
      return 1
    }
    io.stdout.write(formatStatus(base, (await res.json()) as Status))
    return 0
  } catch (err) {
    io.stderr.write(`shoal status: cannot reach ${base}: ${(err as Error).message}\n`)
    return 1
  }
}
