import { join } from 'node:path'
import type { CliIo } from '../io.ts'
import { CERTS_DIR, CONFIG_FILE, containerdPlan } from './containerd.ts'
import { unifiedDiff } from './diff.ts'
import { ConfigureError } from './errors.ts'
import { DAEMON_JSON, dockerPlan } from './docker.ts'
import {
  commitApply,
  commitUndo,
  type DesiredFile,
  type FileChange,
  planApply,
  planUndo,
  readIfExists,
} from './files.ts'
import { podmanPlan, REGISTRIES_CONF } from './podman.ts'
import { parseMirror, parseRegistries } from './registry-host.ts'
import type { Tool } from './tools.ts'

export const DEFAULT_REGISTRIES = ['docker.io']

export interface ConfigureOptions {
  readonly root: string
  readonly mirror: string
  readonly registries?: readonly string[]
  readonly undo: boolean
  readonly dryRun: boolean
  readonly patchConfig: boolean
}

/** `shoal configure <tool>`: compute the files, then print the diff (`--dry-run`) or write them. Exit code. */
export async function runConfigure(tool: Tool, opts: ConfigureOptions, io: CliIo): Promise<number> {
  try {
    return await configure(tool, opts, io)
  } catch (err) {
    if (!(err instanceof ConfigureError)) throw err
    io.stderr.write(`shoal configure ${tool}: ${err.message.replaceAll('\n', ' ')}\n`)
    return 1
  }
}

async function configure(tool: Tool, opts: ConfigureOptions, io: CliIo): Promise<number> {
  const say = (s: string) => void io.stdout.write(`${s}\n`)
  if (opts.undo) return undo(tool, opts, io)
  const { files, notes } = await plan(tool, opts)
  const changes = await planApply(opts.root, files)
  report(changes, opts, say)
  if (!opts.dryRun) await commitApply(opts.root, tool, changes)
  for (const n of notes) say(`note: ${n}`)
  return 0
}

async function plan(
  tool: Tool,
  opts: ConfigureOptions,
): Promise<{ files: readonly DesiredFile[]; notes: readonly string[] }> {
  const mirror = parseMirror(opts.mirror)
  const registries = parseRegistries(opts.registries ?? DEFAULT_REGISTRIES)
  const current = async (path: string) => (await readIfExists(join(opts.root, path)))?.toString('utf8')
  switch (tool) {
    case 'containerd':
      return containerdPlan({
        registries,
        mirror,
        configToml: await current(CONFIG_FILE),
        patchConfig: opts.patchConfig,
      })
    case 'docker':
      return dockerPlan({ mirror, daemonJson: await current(DAEMON_JSON) })
    case 'podman':
      return podmanPlan({ registries, mirror, registriesConf: await current(REGISTRIES_CONF) })
  }
}

async function undo(tool: Tool, opts: ConfigureOptions, io: CliIo): Promise<number> {
  const say = (s: string) => void io.stdout.write(`${s}\n`)
  // containerd keeps one file per registry: with --registries, only theirs (and config.toml) are undone.
  const only =
    tool === 'containerd' && opts.registries !== undefined
      ? onlyRegistries(parseRegistries(opts.registries))
      : undefined
  const p = await planUndo(opts.root, tool, only)
  report(p.changes, opts, say)
  if (p.changes.length === 0 && p.warnings.length === 0 && p.drop.length === 0) say(`nothing to undo for ${tool}`)
  if (!opts.dryRun) await commitUndo(opts.root, tool, p)
  for (const w of p.warnings) io.stderr.write(`warning: ${w}\n`)
  return 0
}

function onlyRegistries(hosts: readonly string[]): (path: string) => boolean {
  const paths = new Set(hosts.map((h) => `${CERTS_DIR}/${h}/hosts.toml`))
  return (path) => paths.has(path) || path === CONFIG_FILE
}

function report(changes: readonly FileChange[], opts: ConfigureOptions, say: (s: string) => void): void {
  for (const c of changes) {
    const where = join(opts.root, c.path)
    if (opts.dryRun) {
      say(unifiedDiff(c.path, c.before?.toString('utf8'), c.after?.toString('utf8')).trimEnd())
      continue
    }
    const verb =
      c.after === undefined ? 'removed' : c.before === undefined ? 'created' : opts.undo ? 'restored' : 'changed'
    say(`${verb} ${where}`)
  }
  if (changes.length === 0) say('nothing to change')
  else if (opts.dryRun) say('(dry run: nothing written)')
}
