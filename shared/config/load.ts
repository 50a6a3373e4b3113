import { Command, CommanderError, Option } from 'commander'
import { createRequire } from 'node:module'
import type * as Yaml from 'yaml'
import { parseBytes, parseDuration, parseHostPort } from './units.ts'

/**
 * The YAML parser, loaded only when a config file is given (`require` of a package that has a Node CommonJS
 * build keeps loading synchronous): a service started from flags and environment alone never holds its ~70 modules.
 */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof Yaml
  return yaml.parse(text)
}

/** One bad key, named, so the CLI can print a single line and exit 2. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly code = 'CONFIG_INVALID'
  readonly key: string
  constructor(key: string, message: string) {
    super(`invalid config: ${key}: ${message}`)
    this.key = key
  }
}

export type OptionType = 'string' | 'url' | 'hostport' | 'bytes' | 'rate' | 'duration' | 'int' | 'bool' | 'list'
export type OptionValue = string | number | boolean | readonly string[] | URL | undefined

export interface OptionSpec {
  readonly type: OptionType
  readonly flag: string // kebab-case; also the YAML key
  readonly describe: string
  readonly default?: OptionValue
  /** For 'int': inclusive bounds. */
  readonly min?: number
  readonly max?: number
}

/** What the command line said, before env, file and defaults are layered under it. */
export interface ParsedFlags {
  /** Raw flag values by spec flag name: a string, a list of strings (repeatable), or true. */
  readonly values: Readonly<Record<string, string | readonly string[] | boolean | undefined>>
  readonly positionals: readonly string[]
}

export interface ConfigSources {
  /** The command line, or flags a `commander` command has already parsed (see `configFlags`). */
  readonly argv: readonly string[] | ParsedFlags
  readonly env: Readonly<Record<string, string | undefined>>
  /** Reads the config file named by --config / SHOAL_CONFIG. */
  readonly readFile: (path: string) => string
}

export interface LoadedConfig<K extends string> {
  readonly values: Readonly<Record<K, OptionValue>>
  /** The parsed YAML document (for structured sections such as `registries:`), or {}. */
  readonly file: Readonly<Record<string, unknown>>
  readonly positionals: readonly string[]
}

export const envName = (flag: string): string => `SHOAL_${flag.toUpperCase().replaceAll('-', '_')}`

const PLACEHOLDER: Record<OptionType, string> = {
  string: 'VALUE',
  url: 'URL',
  hostport: 'HOST:PORT',
  bytes: 'SIZE',
  rate: 'BYTES/S',
  duration: 'DURATION',
  int: 'N',
  bool: '',
  list: 'VALUE',
}

const CONFIG_FLAG = 'config'

/**
 * Declares every spec as a `commander` option on `cmd` (plus `--config FILE`), so parsing and
 * `--help` come from one table. No defaults or env are given to commander: `loadConfig` layers
 * flag > SHOAL_* env > YAML file > default itself, and names the source of a bad value.
 */
export function addConfigOptions(cmd: Command, specs: Readonly<Record<string, OptionSpec>>): Command {
  for (const spec of Object.values(specs)) {
    const placeholder = spec.type === 'bool' ? '' : ` <${PLACEHOLDER[spec.type]}>`
    const option = new Option(`--${spec.flag}${placeholder}`, describe(spec))
    // A repeatable flag collects every value; any other flag keeps the last one.
    if (spec.type === 'list') option.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    cmd.addOption(option)
  }
  cmd.addOption(
    new Option(`--${CONFIG_FLAG} <FILE>`, `YAML file with the same keys as the flags  [${envName(CONFIG_FLAG)}]`),
  )
  return cmd
}

function describe(spec: OptionSpec): string {
  const d = spec.default
  const shown =
    d === undefined || (Array.isArray(d) && d.length === 0) || (spec.type === 'bool' && d === false)
      ? ''
      : ` (default ${Array.isArray(d) ? d.join(',') : String(d)})`
  return `${spec.describe}${shown}  [${envName(spec.flag)}]`
}

/** The flags a command declared with `addConfigOptions` was given, after commander parsed them. */
export function configFlags(cmd: Command, specs: Readonly<Record<string, OptionSpec>>): ParsedFlags {
  const values: Record<string, string | readonly string[] | boolean | undefined> = {}
  for (const spec of [...Object.values(specs), { flag: CONFIG_FLAG, type: 'string' } as const]) {
    const option = cmd.options.find((o) => o.long === `--${spec.flag}`)
    if (option === undefined) continue
    const key = option.attributeName()
    if (cmd.getOptionValueSource(key) !== 'cli') continue
    const value = cmd.getOptionValue(key) as string | string[] | boolean
    // commander reads `--no-bulk` as "bulk: false"; the spec's flag is `no-bulk`, true when given.
    values[spec.flag] = option.negate ? value === false : value
  }
  return { values, positionals: [...cmd.args] }
}

/** commander's message as one line naming the flag, for exit code 2. */
function usageErrorOf(err: CommanderError): ConfigError {
  const msg = err.message.replace(/^error: /, '').replaceAll('\n', ' ')
  const flag = /'(--?[^'\s]+)/.exec(msg)?.[1] ?? 'arguments'
  return new ConfigError(flag, msg)
}

function parseArgv(specs: Readonly<Record<string, OptionSpec>>, argv: readonly string[]): ParsedFlags {
  const cmd = addConfigOptions(new Command(), specs)
    .helpOption(false)
    .allowExcessArguments(true)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
  try {
    cmd.parse([...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) throw usageErrorOf(err)
    throw err
  }
  return configFlags(cmd, specs)
}

/**
 * Precedence: flags, then SHOAL_* environment, then the YAML file, then defaults.
 * Unknown flags and unknown top-level YAML keys are errors (a typo must not pass silently).
 */
export function loadConfig<K extends string>(
  specs: Readonly<Record<K, OptionSpec>>,
  sources: ConfigSources,
  structuredFileKeys: readonly string[] = [],
): LoadedConfig<K> {
  const byFlag = new Map<string, K>()
  for (const key of Object.keys(specs) as K[]) byFlag.set(specs[key].flag, key)

  const parsed = isParsed(sources.argv) ? sources.argv : parseArgv(specs, sources.argv)

  const configPath = (parsed.values[CONFIG_FLAG] as string | undefined) ?? sources.env['SHOAL_CONFIG']
  let file: Record<string, unknown> = {}
  if (configPath !== undefined && configPath !== '') {
    let text: string
    try {
      text = sources.readFile(configPath)
    } catch (err) {
      throw new ConfigError('config', `cannot read ${configPath}: ${(err as NodeJS.ErrnoException).code ?? err}`)
    }
    let doc: unknown
    try {
      doc = parseYaml(text)
    } catch (err) {
      throw new ConfigError('config', `${configPath} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
    }
    if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
      throw new ConfigError('config', `${configPath} must hold a YAML mapping`)
    }
    file = (doc ?? {}) as Record<string, unknown>
    for (const k of Object.keys(file)) {
      if (!byFlag.has(k) && !structuredFileKeys.includes(k)) throw new ConfigError(k, 'unknown key in config file')
    }
  }

  const values = {} as Record<K, OptionValue>
  for (const key of Object.keys(specs) as K[]) {
    const spec = specs[key]
    const fromFlag = parsed.values[spec.flag]
    const fromEnv = sources.env[envName(spec.flag)]
    const fromFile = file[spec.flag]
    let raw: unknown
    let where: string
    if (fromFlag !== undefined) {
      raw = fromFlag
      where = `--${spec.flag}`
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw = spec.type === 'list' ? fromEnv.split(',').map((s) => s.trim()) : fromEnv
      where = envName(spec.flag)
    } else if (fromFile !== undefined && fromFile !== null) {
      raw = fromFile
      where = spec.flag
    } else {
      values[key] = spec.default
      continue
    }
    values[key] = coerce(spec, raw, where)
  }
  return { values: Object.freeze(values), file: Object.freeze(file), positionals: parsed.positionals }
}

function isParsed(argv: ConfigSources['argv']): argv is ParsedFlags {
  return !Array.isArray(argv)
}

function coerce(spec: OptionSpec, raw: unknown, where: string): OptionValue {
  const text = typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : raw
  switch (spec.type) {
    case 'bool': {
      if (typeof raw === 'boolean') return raw
      if (text === 'true' || text === '1' || text === 'yes') return true
      if (text === 'false' || text === '0' || text === 'no') return false
      throw new ConfigError(where, `expected true or false, got ${JSON.stringify(raw)}`)
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw : [raw]
      const out: string[] = []
      for (const item of items) {
        if (typeof item !== 'string' || item === '') throw new ConfigError(where, 'expected a list of strings')
        out.push(item)
      }
      return Object.freeze(out)
    }
    default:
      break
  }
  if (typeof text !== 'string') throw new ConfigError(where, `expected a ${spec.type}, got ${JSON.stringify(raw)}`)
  switch (spec.type) {
    case 'string':
      return text
    case 'url': {
      let u: URL
      try {
        u = new URL(text)
      } catch {
        throw new ConfigError(where, `not a URL: ${JSON.stringify(text)}`)
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:')
        throw new ConfigError(where, 'only http:// and https:// URLs')
      if (u.username !== '' || u.password !== '')
        throw new ConfigError(where, 'put credentials in the config file, not the URL')
      return u
    }
    case 'hostport':
      if (parseHostPort(text) === undefined)
        throw new ConfigError(where, `expected HOST:PORT, got ${JSON.stringify(text)}`)
      return text
    case 'bytes':
    case 'rate': {
      const n = text === 'unlimited' || text === '0' ? 0 : parseBytes(text.replace(/\/s$/, ''))
      if (n === undefined)
        throw new ConfigError(where, `expected a size such as 10GiB or 50MB, got ${JSON.stringify(text)}`)
      return n
    }
    case 'duration': {
      const n = parseDuration(text)
      if (n === undefined)
        throw new ConfigError(where, `expected a duration such as 500ms, 5s or 2m, got ${JSON.stringify(text)}`)
      return n
    }
    case 'int': {
      const n = Number(text)
      if (
        !Number.isInteger(n) ||
        (spec.min !== undefined && n < spec.min) ||
        (spec.max !== undefined && n > spec.max)
      ) {
        throw new ConfigError(
          where,
          `expected an integer in ${spec.min ?? '-∞'}..${spec.max ?? '∞'}, got ${JSON.stringify(text)}`,
        )
      }
      return n
    }
  }
}
