import { describe, expect, it } from 'vitest'
import { AGENT_OPTIONS } from '../../agent/config.ts'
import { main } from '../../cli/main.ts'
import { SEEDER_OPTIONS } from '../../seeder/config.ts'
import { envName } from '../../shared/config/index.ts'

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } }
  const code = await main(argv, { io, env: {} })
  return { code, out, err }
}

const SUBCOMMANDS = ['agent', 'seeder', 'demo', 'preheat', 'status']

describe('shoal', () => {
  it.each([[[]], [['-h']], [['--help']], [['help']]])('%j prints the commands and exits 0', async (argv) => {
    const r = await run(argv)
    expect(r.code).toBe(0)
    for (const c of SUBCOMMANDS) expect(r.out).toContain(c)
    expect(r.err).toBe('')
  })

  it.each(SUBCOMMANDS)('%s answers -h and --help alike, with exit 0', async (command) => {
    const short = await run([command, '-h'])
    const long = await run([command, '--help'])
    const viaHelp = await run(['help', command])
    expect(short.code).toBe(0)
    expect(short.out).toContain(`shoal ${command}`)
    expect(short.err).toBe('')
    expect(long).toEqual(short)
    expect(viaHelp).toEqual(short)
  })

  it.each([
    ['agent', AGENT_OPTIONS],
    ['seeder', SEEDER_OPTIONS],
  ] as const)('%s --help lists every flag with its SHOAL_* variable', async (command, specs) => {
    const { out } = await run([command, '--help'])
    const flat = out.replace(/\s+/g, ' ')
    for (const spec of Object.values(specs)) {
      expect(flat).toContain(`--${spec.flag}`)
      expect(flat).toContain(`[${envName(spec.flag)}]`)
    }
    expect(flat).toContain('--config <FILE>')
    expect(flat).toContain('[SHOAL_CONFIG]')
  })

  it.each(SUBCOMMANDS)('%s: an unknown flag is one line naming it, exit 2', async (command) => {
    const r = await run([command, '--no-such-flag', 'x'])
    expect(r.code).toBe(2)
    expect(r.out).toBe('')
    expect(r.err).toMatch(new RegExp(`^shoal ${command}: .*--no-such-flag.*\\n$`))
    expect(r.err.split('\n')).toHaveLength(2)
  })

  it('an unknown command is one line, exit 2', async () => {
    const r = await run(['nope'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/^shoal: .*nope.*\n$/)
    expect(r.err.split('\n')).toHaveLength(2)
  })

  it('agent: a bad value is one line naming the flag, exit 2, before anything starts', async () => {
    const r = await run(['agent', '--listen', 'nope', '--data', '/nonexistent/never-created'])
    expect(r.code).toBe(2)
    expect(r.err).toBe('shoal agent: invalid config: --listen: expected HOST:PORT, got "nope"\n')
  })

  it('seeder: a flag missing its value is one line naming it, exit 2', async () => {
    const r = await run(['seeder', '--api-listen'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/^shoal seeder: .*--api-listen.*\n$/)
    expect(r.err.split('\n')).toHaveLength(2)
  })

  it('demo: a count out of range is one line naming the flag, exit 2', async () => {
    const r = await run(['demo', '--agents', '99'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/^shoal demo: .*--agents.*1 to 32.*\n$/)
  })
})
