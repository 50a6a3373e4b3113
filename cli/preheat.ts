import type { PreheatJobView } from '../seeder/preheat.ts'
import { type CliIo, formatBytes, httpBase, parseFlags, shortDigest, UsageError } from './io.ts'

export const PREHEAT_USAGE = `usage: shoal preheat --seeder http://HOST:PORT IMAGE [--platform os/arch]...

Asks a seeder to pull IMAGE (registry/name:tag, name:tag or name@sha256:…) from the origin into
the swarm before any node needs it, and follows the job until it is done.
Exit: 0 done, 1 failed, 2 bad usage.`

const BAR_WIDTH = 30

/** `shoal preheat`: posts the job, then polls it and draws per-layer progress. Returns the exit code. */
export async function preheatMain(argv: readonly string[], io: CliIo, opts: { pollMs?: number } = {}): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(`${PREHEAT_USAGE}\n`)
    return 0
  }
  let seeder: string
  let image: string
  let platforms: string[]
  try {
    const { flags, positionals } = parseFlags(argv, ['seeder', 'platform'])
    const s = flags.get('seeder')
    if (s === undefined || s.length !== 1) throw new UsageError('give --seeder URL once')
    if (positionals.length !== 1) throw new UsageError('give exactly one IMAGE')
    seeder = httpBase(s[0]!, 'seeder')
    image = positionals[0]!
    platforms = flags.get('platform') ?? []
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.stderr.write(`shoal preheat: ${err.message}\n${PREHEAT_USAGE}\n`)
    return 2
  }
  const f = io.fetch ?? fetch
  const signal = io.signal
  let res: Response
  try {
    res = await f(`${seeder}/api/v1/preheat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image, ...(platforms.length > 0 ? { platforms } : {}) }),
      ...(signal === undefined ? {} : { signal }),
    })
  } catch (err) {
    io.stderr.write(`shoal preheat: cannot reach ${seeder}: ${(err as Error).message}\n`)
    return 1
  }
  const posted = (await res.json().catch(() => ({}))) as { id?: unknown; error?: unknown }
  if (res.status === 400) {
    io.stderr.write(`shoal preheat: ${String(posted.error ?? 'bad request')}\n`)
    return 2
  }
  if (res.status !== 202 || typeof posted.id !== 'string') {
    io.stderr.write(`shoal preheat: seeder answered ${res.status}${posted.error ? `: ${String(posted.error)}` : ''}\n`)
    return 1
  }
  const id = posted.id
  const view = io.stdout.isTTY === true ? new BarView(io) : new LineView(io)
  for (;;) {
    const r = await f(`${seeder}/api/v1/preheat/${encodeURIComponent(id)}`, signal === undefined ? {} : { signal })
    if (r.status !== 200) {
      io.stderr.write(`shoal preheat: job ${id}: seeder answered ${r.status}\n`)
      return 1
    }
    const job = (await r.json()) as PreheatJobView
    view.show(job)
    if (job.state === 'done') {
      const total = job.layers.reduce((n, l) => n + l.size, 0)
      io.stdout.write(`preheated ${job.image}: ${job.layers.length} blobs, ${formatBytes(total)}\n`)
      return 0
    }
    if (job.state === 'failed') {
      io.stderr.write(`shoal preheat: ${job.image} failed: ${job.error ?? 'unknown error'}\n`)
      return 1
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 250))
  }
}

/** Redraws one bar per blob in place. */
class BarView {
  readonly #io: CliIo
  #drawn = 0
  constructor(io: CliIo) {
    this.#io = io
  }
  show(job: PreheatJobView): void {
    const lines = [`${job.image} ${job.state}`]
    for (const l of job.layers) {
      const frac = l.size === 0 ? 1 : l.bytes / l.size
      const fill = Math.round(frac * BAR_WIDTH)
      const bar = `${'#'.repeat(fill)}${'.'.repeat(BAR_WIDTH - fill)}`
      lines.push(`${shortDigest(l.digest)} [${bar}] ${formatBytes(l.bytes)} / ${formatBytes(l.size)}`)
    }
    const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : ''
    this.#io.stdout.write(`${up}${lines.map((s) => `\x1b[2K${s}`).join('\n')}\n`)
    this.#drawn = lines.length
  }
}

/** Plain lines for logs: the state once, and each blob once when it completes. */
class LineView {
  readonly #io: CliIo
  readonly #finished = new Set<string>()
  #state = ''
  constructor(io: CliIo) {
    this.#io = io
  }
  show(job: PreheatJobView): void {
    if (job.state !== this.#state) {
      this.#state = job.state
      this.#io.stdout.write(
        `${job.image}: ${job.state}${job.layers.length > 0 ? `, ${job.layers.length} blobs` : ''}\n`,
      )
    }
    for (const l of job.layers) {
      if (l.bytes < l.size || this.#finished.has(l.digest)) continue
      this.#finished.add(l.digest)
      this.#io.stdout.write(`${l.digest} ${formatBytes(l.size)} done\n`)
    }
  }
}
