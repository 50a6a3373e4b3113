import { type CliIo, formatBytes, httpBase, shortDigest, UsageError } from './io.ts'
import { type RegisterCommand, runCli } from './program.ts'

/** `shoal status --agent URL | --seeder URL`. */
export const registerStatus: RegisterCommand = (program, ctx) => {
  program
    .command('status')
    .summary("print a node's status: status --agent URL | --seeder URL")
    .description("Prints a node's /status as a summary: peers, cache, bytes by source, current downloads.")
    .option('--agent <URL>', "an agent's mirror, http://HOST:PORT")
    .option('--seeder <URL>', "a seeder's API, http://HOST:PORT")
    .action(async (flags: { agent?: string; seeder?: string }) => {
      ctx.exit(await status(flags, ctx.io))
    })
}

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

/** `shoal status …` run on its own (tests, scripts): the same command, its exit code. */
export function statusMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runCli(['status', ...argv], io, process.env, [registerStatus])
}

/** GET /status of one node and print it. Returns the exit code. */
async function status(flags: { agent?: string; seeder?: string }, io: CliIo): Promise<number> {
  if ((flags.agent === undefined) === (flags.seeder === undefined))
    throw new UsageError('give exactly one of --agent URL, --seeder URL')
  const base = flags.agent === undefined ? httpBase(flags.seeder!, 'seeder') : httpBase(flags.agent, 'agent')
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
