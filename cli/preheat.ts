import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import type { PreheatJobView } from '../seeder/preheat.ts'
import { type CliIo, formatBytes, httpBase, shortDigest, UsageError } from './io.ts'
import { type CliContext, type RegisterCommand, runCli } from './program.ts'

const DESCRIPTION =
  'Asks a seeder to pull IMAGE from the origin into the swarm before any node needs it, and follows the job until it is done.'

const BAR_WIDTH = 30

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v]

/** `shoal preheat --seeder URL IMAGE [--platform os/arch]... [--agents N] [--site-copies SITE=N]... [--auth-file FILE]`. */
export const registerPreheat: RegisterCommand = (program, ctx) => addPreheat(program, ctx, {})

function addPreheat(program: Command, ctx: CliContext, opts: { pollMs?: number }): void {
  program
    .command('preheat')
    .summary('ask a seeder to pull an image into the swarm ahead of time: preheat --seeder URL IMAGE')
    .description(DESCRIPTION)
    .argument('<IMAGE>', 'registry/name:tag, name:tag or name@sha256:…')
    .option('--seeder <URL>', "the seeder's API, http://HOST:PORT (required)")
    .option('--platform <os/arch>', 'only these platforms of an index (repeatable; default: all)', collect)
    .option('--agents <N>', 'also have N agents prefetch it into their caches')
    .option(
      '--site-copies <SITE=N>',
      'have N agents of SITE hold it, pinned for their --preheat-ttl (repeatable, or SITE=N,SITE=N)',
      collect,
    )
    .option(
      '--auth-file <FILE>',
      'origin credentials for this job only: a JSON file {"username": "…", "password": "…"} or {"token": "…"}',
    )
    .option('--token-file <FILE>', "the seeder API's bearer token (its --api-token-file)")
    .addHelpText('after', '\nExit: 0 done, 1 failed, 2 bad usage.')
    .action(async (image: string, flags: PreheatFlags) => {
      ctx.exit(await preheat(image, flags, ctx.io, opts))
    })
}

/** `shoal preheat …` run on its own (tests, scripts): the same command, its exit code. */
export function preheatMain(argv: readonly string[], io: CliIo, opts: { pollMs?: number } = {}): Promise<number> {
  return runCli(['preheat', ...argv], io, process.env, [(program, ctx) => addPreheat(program, ctx, opts)])
}

interface PreheatFlags {
  seeder?: string
  platform?: string[]
  agents?: string
  siteCopies?: string[]
  authFile?: string
  tokenFile?: string
}

/** Posts the job, then polls it and draws per-layer progress. Returns the exit code. */
async function preheat(image: string, flags: PreheatFlags, io: CliIo, opts: { pollMs?: number }): Promise<number> {
  if (flags.seeder === undefined) throw new UsageError('give --seeder URL')
  const seeder = httpBase(flags.seeder, 'seeder')
  const platforms = flags.platform ?? []
  let agents: number | undefined
  if (flags.agents !== undefined) {
    agents = Number(flags.agents)
    if (!/^\d+$/.test(flags.agents) || !Number.isSafeInteger(agents)) throw new UsageError('--agents: expected a count')
  }
  const sites = flags.siteCopies === undefined ? undefined : parseSiteCopies(flags.siteCopies)
  const scope = { ...(agents === undefined ? {} : { agents }), ...(sites === undefined ? {} : { sites }) }
  const credentials = flags.authFile === undefined ? undefined : await readCredentials(flags.authFile)
  const auth = flags.tokenFile === undefined ? {} : { authorization: `Bearer ${await readToken(flags.tokenFile)}` }
  const f = io.fetch ?? fetch
  const signal = io.signal
  let res: Response
  try {
    res = await f(`${seeder}/api/v1/preheat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({
        image,
        ...(platforms.length > 0 ? { platforms } : {}),
        ...(Object.keys(scope).length === 0 ? {} : { scope }),
        ...(credentials === undefined ? {} : { credentials }),
      }),
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
    const hint = res.status === 401 ? (flags.tokenFile === undefined ? ' (give --token-file)' : '') : ''
    io.stderr.write(
      `shoal preheat: seeder answered ${res.status}${posted.error ? `: ${String(posted.error)}` : ''}${hint}\n`,
    )
    return 1
  }
  const id = posted.id
  const view = io.stdout.isTTY === true ? new BarView(io) : new LineView(io)
  for (;;) {
    const r = await f(`${seeder}/api/v1/preheat/${encodeURIComponent(id)}`, {
      headers: auth,
      ...(signal === undefined ? {} : { signal }),
    })
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

/**
 * `--site-copies store-17=2` (repeatable, or comma-separated) → `{ "store-17": 2 }`. The seeder checks the
 * site names; here only the shape, so a typo is a usage error before anything is sent. A site given twice
 * is refused rather than guessed at.
 */
export function parseSiteCopies(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const item of values.flatMap((v) => v.split(','))) {
    const m = /^([^=\s]+)=(\d+)$/.exec(item.trim())
    if (m === null) throw new UsageError(`--site-copies: expected SITE=N, got ${JSON.stringify(item)}`)
    const [, site, count] = m as unknown as [string, string, string]
    if (Object.hasOwn(out, site)) throw new UsageError(`--site-copies: ${site} given twice`)
    const n = Number(count)
    if (!Number.isSafeInteger(n)) throw new UsageError(`--site-copies: ${site}: expected a count`)
    out[site] = n
  }
  return out
}

/** The token is sent, never printed: errors name the file. */
async function readToken(file: string): Promise<string> {
  let token: string
  try {
    token = (await readFile(file, 'utf8')).trim()
  } catch (err) {
    throw new UsageError(`--token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if (token === '') throw new UsageError(`--token-file: ${file} is empty`)
  return token
}

/** The file's contents are sent, never printed: errors name the file, not what is in it. */
async function readCredentials(file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError(`--auth-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new UsageError(`--auth-file: ${file} is not JSON ({"username","password"} or {"token"})`)
  }
}

function agentsLine(job: PreheatJobView): string | undefined {
  const a = job.agents
  const sites = job.scope.sites ?? {}
  if ((job.scope.agents === 0 && Object.keys(sites).length === 0) || a === undefined) return undefined
  const perSite = Object.entries(a.sites ?? {}).map(([s, c]) => `${s} ${c.complete}/${c.wanted} held`)
  // What was asked: N agents in all, the site copies counting towards N.
  const wanted = Math.max(
    job.scope.agents,
    Object.values(sites).reduce((n, c) => n + c, 0),
  )
  return (
    `agents: ${a.accepted}/${wanted} accepted, ${a.complete} complete` +
    `${a.errors.length > 0 ? `, ${a.errors.length} refused or failed` : ''}` +
    `${perSite.length > 0 ? `; sites: ${perSite.join(', ')}` : ''}`
  )
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
    const agents = agentsLine(job)
    if (agents !== undefined) lines.push(agents)
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
  #agents: string | undefined
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
    const agents = agentsLine(job)
    if (agents !== undefined && agents !== this.#agents) {
      this.#agents = agents
      this.#io.stdout.write(`${agents}\n`)
    }
  }
}
