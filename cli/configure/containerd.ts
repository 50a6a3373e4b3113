import { isDeepStrictEqual } from 'node:util'
import { parse } from 'smol-toml'
import { ConfigureError } from './errors.ts'
import type { DesiredFile } from './files.ts'
import { mirrorOrigin, upstreamServer } from './registry-host.ts'

/** The paths containerd reads on the host; `--root` only moves where they are written. */
export const CERTS_DIR = 'etc/containerd/certs.d'
export const CONFIG_FILE = 'etc/containerd/config.toml'
const HOST_CERTS_DIR = `/${CERTS_DIR}`

/**
 * How long containerd waits for the agent before it tries the next host (the registry itself): short, since
 * the agent is on this host or not there at all.
 */
export const DIAL_TIMEOUT = '200ms'

export interface ContainerdOptions {
  readonly registries: readonly string[]
  readonly mirror: URL
  /** `etc/containerd/config.toml` as it is now, undefined when there is none. */
  readonly configToml: string | undefined
  readonly patchConfig: boolean
}

export interface ContainerdPlan {
  readonly files: readonly DesiredFile[]
  readonly notes: readonly string[]
}

/** `hosts.toml` for each registry and `_default`, and (with `patchConfig`) a `config.toml` whose `config_path` reads them. */
export function containerdPlan(opts: ContainerdOptions): ContainerdPlan {
  const files: DesiredFile[] = [
    ...opts.registries.map((host) => ({
      path: `${CERTS_DIR}/${host}/hosts.toml`,
      content: Buffer.from(hostsToml(opts.mirror, upstreamServer(host))),
    })),
    // Every other registry: containerd uses the reference's own host as `server` when none is given.
    { path: `${CERTS_DIR}/_default/hosts.toml`, content: Buffer.from(hostsToml(opts.mirror, undefined)) },
  ]
  const check = checkConfigPath(opts.configToml)
  const notes: string[] = []
  if (check.kind === 'ok') {
    notes.push(`containerd's config_path (${check.where}) already reads ${HOST_CERTS_DIR}`)
  } else if (opts.patchConfig) {
    if (check.patched === undefined) {
      throw new ConfigureError(
        `${check.why}, and config.toml sets it in a form this tool will not rewrite: set ${check.where} = "${check.value}" by hand`,
      )
    }
    files.push({ path: CONFIG_FILE, content: Buffer.from(check.patched) })
    notes.push(`config.toml: ${check.why}; set ${check.where} = "${check.value}": restart containerd to apply it`)
  } else {
    notes.push(
      `config.toml: ${check.why}. containerd's CRI reads hosts.toml only from config_path: put\n\n` +
        `${check.snippet}\n` +
        `in /${CONFIG_FILE} and restart containerd, or run again with --patch-config`,
    )
  }
  for (const w of check.warnings) notes.push(w)
  notes.push(`ctr reads no config_path: pass it \`--hosts-dir ${HOST_CERTS_DIR}\``)
  return { files, notes }
}

export function hostsToml(mirror: URL, server: string | undefined): string {
  const lines = [
    '# Written by `shoal configure containerd`: pulls try the Shoal agent first, then the registry itself.',
  ]
  if (server !== undefined) lines.push(`server = ${JSON.stringify(server)}`)
  lines.push(
    '',
    `[host.${JSON.stringify(mirrorOrigin(mirror))}]`,
    '  capabilities = ["pull", "resolve"]',
    `  dial_timeout = ${JSON.stringify(DIAL_TIMEOUT)}`,
  )
  return `${lines.join('\n')}\n`
}

export type ConfigPathCheck =
  | { readonly kind: 'ok'; readonly where: string; readonly warnings: readonly string[] }
  | {
      readonly kind: 'change'
      readonly why: string
      readonly where: string
      readonly value: string
      /** The table and key to add by hand. */
      readonly snippet: string
      /** The whole file with the change made; undefined when the file sets the key in a form not safe to edit. */
      readonly patched: string | undefined
      readonly warnings: readonly string[]
    }

/**
 * The `registry` table the CRI plugin reads `config_path` from, by config version: 1 (no `version` key,
 * containerd 1.x), 2 (containerd 1.x and 2.x) and 3 (containerd 2.x).
 */
function registryTable(version: number): readonly string[] {
  if (version === 3) return ['plugins', 'io.containerd.cri.v1.images', 'registry']
  if (version === 2) return ['plugins', 'io.containerd.grpc.v1.cri', 'registry']
  return ['plugins', 'cri', 'registry']
}

/** Reads `config_path` from containerd's config.toml and, when it does not list the certs folder, writes the fix. */
export function checkConfigPath(text: string | undefined): ConfigPathCheck {
  if (text === undefined) {
    // containerd 2.x reads /etc/containerd/certs.d by default, 1.x reads nothing: a v2 file serves both.
    const table = registryTable(2)
    const body = `version = 2\n\n${tableHeader(table)}\n  config_path = ${JSON.stringify(HOST_CERTS_DIR)}\n`
    return {
      kind: 'change',
      why: `/${CONFIG_FILE} does not exist (containerd 2.x reads ${HOST_CERTS_DIR} by default, 1.x does not)`,
      where: keyName(table),
      value: HOST_CERTS_DIR,
      snippet: body,
      patched: body,
      warnings: [],
    }
  }
  let doc: Record<string, unknown>
  try {
    doc = parse(text) as Record<string, unknown>
  } catch (err) {
    throw new ConfigureError(`/${CONFIG_FILE} is not valid TOML: ${(err as Error).message.split('\n')[0]}`)
  }
  const version = typeof doc['version'] === 'number' ? doc['version'] : 1
  if (![1, 2, 3].includes(version)) throw new ConfigureError(`/${CONFIG_FILE}: unknown config version ${version}`)
  const table = registryTable(version)
  const registry = lookup(doc, table)
  const warnings: string[] = []
  if (isTable(registry) && registry['mirrors'] !== undefined) {
    warnings.push(
      `${keyName([...table, 'mirrors'])} is set: containerd ignores or refuses it beside config_path; move those mirrors to hosts.toml`,
    )
  }
  const current = isTable(registry) ? registry['config_path'] : undefined
  const where = keyName([...table, 'config_path'])
  const dirs = typeof current === 'string' ? current.split(':').filter((d) => d !== '') : []
  if (dirs.some((d) => d.replace(/\/+$/, '') === HOST_CERTS_DIR)) return { kind: 'ok', where, warnings }
  // Keep folders already listed: config_path is a list, searched in order.
  const value = [HOST_CERTS_DIR, ...dirs].join(':')
  const why =
    current === undefined
      ? `${where} is not set`
      : `${where} is ${JSON.stringify(current)}, which does not include ${HOST_CERTS_DIR}`
  // The patch is textual, to keep the operator's comments and layout; it must change that one key and nothing else.
  let patched = patchKey(text, table, 'config_path', value)
  const expected = plain(doc)
  setIn(expected, [...table, 'config_path'], value)
  if (patched !== undefined && !isDeepStrictEqual(parsed(patched), expected)) patched = undefined
  return {
    kind: 'change',
    why,
    where,
    value,
    snippet: `${tableHeader(table)}\n  config_path = ${JSON.stringify(value)}\n`,
    patched,
    warnings,
  }
}

/**
 * Sets `key` in the table `[path]` of a TOML text by editing lines: replaces the key's line, or adds it after
 * the table header, or adds the table at the end. Undefined when the key sits on a line it cannot replace alone.
 */
export function patchKey(text: string, path: readonly string[], key: string, value: string): string | undefined {
  const lines = text.split('\n')
  const line = `${key} = ${JSON.stringify(value)}`
  let inTable = false
  let header = -1
  for (let i = 0; i < lines.length; i++) {
    const h = parseHeader(lines[i]!)
    if (h !== undefined) {
      inTable = h !== 'array' && isDeepStrictEqual(h, path)
      if (inTable) header = i
      continue
    }
    if (inTable && new RegExp(`^\\s*${key}\\s*=`).test(lines[i]!)) {
      const indent = /^\s*/.exec(lines[i]!)![0]
      // A value running onto later lines (a multi-line string) is not one line to replace.
      if (!/=\s*("[^"\\]*"|'[^']*')\s*(#.*)?$/.test(lines[i]!)) return undefined
      lines[i] = `${indent}${line}`
      return lines.join('\n')
    }
  }
  if (header >= 0) {
    const next = lines[header + 1] ?? ''
    const indent = parseHeader(next) === undefined && /^\s+\S/.test(next) ? /^\s*/.exec(next)![0] : '  '
    lines.splice(header + 1, 0, `${indent}${line}`)
    return lines.join('\n')
  }
  const sep = text === '' || text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n'
  return `${text}${sep}${tableHeader(path)}\n  ${line}\n`
}

/** The dotted key path of a `[table]` header line, `'array'` for `[[array]]`, undefined for other lines. */
function parseHeader(line: string): readonly string[] | 'array' | undefined {
  const t = line.replace(/\s+#.*$/, '').trim()
  if (t.startsWith('[[')) return 'array'
  if (!t.startsWith('[') || !t.endsWith(']')) return undefined
  const inner = t.slice(1, -1).trim()
  const keys: string[] = []
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(\.|$)/y
  let m: RegExpExecArray | null
  while (re.lastIndex < inner.length && (m = re.exec(inner)) !== null) {
    keys.push(m[1] !== undefined ? (JSON.parse(`"${m[1]}"`) as string) : (m[2] ?? m[3]!))
    if (m[4] === '') break
  }
  return re.lastIndex === inner.length || keys.length > 0 ? keys : undefined
}

function tableHeader(path: readonly string[]): string {
  return `[${path.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join('.')}]`
}

function keyName(path: readonly string[]): string {
  return tableHeader(path).slice(1, -1)
}

/** The patched text as plain data, undefined when the edit broke it (a table defined twice). */
function parsed(text: string): Record<string, unknown> | undefined {
  try {
    return plain(parse(text))
  } catch {
    return undefined
  }
}

/** TOML values as plain JSON data (objects from the parser may lack Object's prototype). */
function plain(v: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(v)) as Record<string, unknown>
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function lookup(doc: Record<string, unknown>, path: readonly string[]): unknown {
  let v: unknown = doc
  for (const k of path) v = isTable(v) ? v[k] : undefined
  return v
}

function setIn(doc: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let t = doc
  for (const k of path.slice(0, -1)) {
    if (!isTable(t[k])) t[k] = {}
    t = t[k] as Record<string, unknown>
  }
  t[path.at(-1)!] = value
}
