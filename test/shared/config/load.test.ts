import { describe, expect, it } from 'vitest'
import { Command } from 'commander'
import {
  addConfigOptions,
  ConfigError,
  configFlags,
  loadConfig,
  type OptionSpec,
  parseBytes,
  parseDuration,
} from '../../../shared/config/index.ts'

const SPECS = {
  listen: { type: 'hostport', flag: 'listen', default: '127.0.0.1:5000', describe: '' },
  max: { type: 'bytes', flag: 'cache-max-bytes', default: 0, describe: '' },
  ttl: { type: 'duration', flag: 'tag-ttl', default: 5000, describe: '' },
  ro: { type: 'bool', flag: 'read-only', default: false, describe: '' },
  insecure: { type: 'list', flag: 'insecure-registry', default: [], describe: '' },
  origin: { type: 'url', flag: 'origin', describe: '' },
  noBulk: { type: 'bool', flag: 'no-bulk', default: false, describe: '' },
} as const satisfies Record<string, OptionSpec>

const files: Record<string, string> = {
  'ok.yaml':
    'cache-max-bytes: 10GiB\ntag-ttl: 2s\nlisten: 0.0.0.0:6000\nregistries:\n  r.example: {username: u, password: p}\n',
  'typo.yaml': 'cache-max-byte: 1\n',
  'bad.yaml': 'listen: [oops',
}
const readFile = (p: string) => {
  const f = files[p]
  if (f === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' })
  return f
}

function load(argv: string[], env: Record<string, string> = {}) {
  return loadConfig(SPECS, { argv, env, readFile }, ['registries'])
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('loadConfig', () => {
  it('applies defaults', () => {
    expect(load([]).values).toMatchObject({ listen: '127.0.0.1:5000', max: 0, ttl: 5000, ro: false, insecure: [] })
  })

  it('takes flags over env over file', () => {
    const env = { SHOAL_TAG_TTL: '7s', SHOAL_LISTEN: '127.0.0.1:7000' }
    const c = load(['--config', 'ok.yaml', '--listen', '127.0.0.1:8000'], env)
    expect(c.values.listen).toBe('127.0.0.1:8000')
    expect(c.values.ttl).toBe(7000)
    expect(c.values.max).toBe(10 * 1024 ** 3)
    expect(c.file['registries']).toEqual({ 'r.example': { username: 'u', password: 'p' } })
  })

  it('repeats list flags and splits list env', () => {
    expect(load(['--insecure-registry', 'a:1', '--insecure-registry', 'b:2']).values.insecure).toEqual(['a:1', 'b:2'])
    expect(load([], { SHOAL_INSECURE_REGISTRY: 'a:1, b:2' }).values.insecure).toEqual(['a:1', 'b:2'])
  })

  it.each([
    [['--listen', 'nope'], {}, '--listen'],
    [['--cache-max-bytes', 'lots'], {}, '--cache-max-bytes'],
    [[], { SHOAL_TAG_TTL: 'soon' }, 'SHOAL_TAG_TTL'],
    [['--origin', 'ftp://x'], {}, '--origin'],
    [['--origin', 'http://u:p@x'], {}, '--origin'],
    [['--bogus'], {}, '--bogus'],
    [['--config', 'typo.yaml'], {}, 'cache-max-byte'],
    [['--config', 'bad.yaml'], {}, 'config'],
    [['--config', 'missing.yaml'], {}, 'config'],
  ])('names the bad key: %j %j', (argv, env, key) => {
    const err = errorOf(() => load(argv as string[], env as Record<string, string>))
    expect(err.key).toBe(key)
    expect(err.message).not.toContain('\n')
  })

  it('reads a --no-* flag as the spec names it, not as commander negation', () => {
    expect(load([]).values.noBulk).toBe(false)
    expect(load(['--no-bulk']).values.noBulk).toBe(true)
    expect(load([], { SHOAL_NO_BULK: 'true' }).values.noBulk).toBe(true)
  })

  it('takes flags a commander command already parsed, with the same result as argv', () => {
    const argv = ['--listen', '127.0.0.1:9', '--insecure-registry', 'a:1', '--insecure-registry', 'b:2', '--read-only']
    const cmd = addConfigOptions(new Command(), SPECS).exitOverride()
    cmd.parse(argv, { from: 'user' })
    const viaCommand = loadConfig(SPECS, { argv: configFlags(cmd, SPECS), env: {}, readFile }, ['registries'])
    expect(viaCommand.values).toEqual(load(argv).values)
    expect(viaCommand.values).toMatchObject({ listen: '127.0.0.1:9', insecure: ['a:1', 'b:2'], ro: true })
  })

  it('freezes the result', () => {
    expect(Object.isFrozen(load([]).values)).toBe(true)
  })
})

describe('units', () => {
  it('parses sizes and durations', () => {
    expect(parseBytes('4MiB')).toBe(4 * 1024 * 1024)
    expect(parseBytes('1.5GB')).toBe(1.5e9)
    expect(parseBytes('12 parsecs')).toBeUndefined()
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('2m')).toBe(120_000)
    expect(parseDuration('-1s')).toBeUndefined()
  })
})
