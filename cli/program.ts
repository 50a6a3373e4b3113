import { Command, CommanderError } from 'commander'
import { ConfigError } from '../shared/config/index.ts'
import { type CliIo, UsageError } from './io.ts'

/** What a subcommand's action gets: where to write, the environment, and how to set the exit code. */
export interface CliContext {
  readonly io: CliIo
  readonly env: NodeJS.ProcessEnv
  /** The process exit code of the command that ran (0 when an action never sets it). */
  exit(code: number): void
}

/**
 * A subcommand adds itself to the program: `program.command(NAME)`, its options, and an action that
 * calls `ctx.exit(code)`. One file per subcommand; `cli/main.ts` lists them. Heavy modules are imported
 * inside the action, so `shoal --help` and `shoal status` do not load libp2p.
 */
export type RegisterCommand = (program: Command, ctx: CliContext) => void

export const EXIT_USAGE = 2

/**
 * Builds `shoal` with the given subcommands and runs `argv` (without the node and script paths).
 * Every command answers `-h` and `--help`; bad usage is one line on stderr and exit 2.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  env: NodeJS.ProcessEnv,
  commands: readonly RegisterCommand[],
  opts: { readonly name?: string; readonly description?: string; readonly help?: string } = {},
): Promise<number> {
  let code = 0
  const ctx: CliContext = { io, env, exit: (c) => void (code = c) }
  const program = new Command(opts.name ?? 'shoal')
  // Settings made before `program.command()` are inherited by every subcommand.
  program
    .helpOption('-h, --help', 'show the flags of this command')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      // The error line is written by the catch below, with the command's name.
      outputError: () => {},
    })
  if (opts.description !== undefined) program.description(opts.description)
  if (opts.help !== undefined) program.addHelpText('after', `\n${opts.help}`)
  for (const register of commands) register(program, ctx)
  let current = program.name()
  program.hook('preAction', (_program, action) => {
    current = commandPath(action)
  })
  try {
    await program.parseAsync([...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, -h, `help`, --version: commander printed what was asked and "exits" 0.
      if (err.exitCode === 0) return 0
      const cmd = commandOf(program, argv)
      io.stderr.write(`${commandPath(cmd)}: ${oneLine(err.message)}\n`)
      return EXIT_USAGE
    }
    if (err instanceof UsageError || err instanceof ConfigError) {
      io.stderr.write(`${current}: ${oneLine(err.message)}\n`)
      return EXIT_USAGE
    }
    throw err
  }
  return code
}

function oneLine(message: string): string {
  return message.replace(/^error: /, '').replaceAll('\n', ' ')
}

function commandPath(cmd: Command): string {
  const names: string[] = []
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name())
  return names.join(' ')
}

/** The deepest subcommand named by the leading words of `argv` (for naming it in an error line). */
function commandOf(program: Command, argv: readonly string[]): Command {
  let cmd = program
  for (const word of argv) {
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word))
    if (sub === undefined) break
    cmd = sub
  }
  return cmd
}
