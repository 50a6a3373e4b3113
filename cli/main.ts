import { registerAgent } from './agent.ts'
import { registerDemo } from './demo/command.ts'
import type { CliIo } from './io.ts'
import { registerPreheat } from './preheat.ts'
import { type RegisterCommand, runCli } from './program.ts'
import { registerSeeder } from './seeder.ts'
import { registerStatus } from './status.ts'

/** Every subcommand of `shoal`, in the order `shoal --help` lists them. A new one is one file and one line here. */
export const COMMANDS: readonly RegisterCommand[] = [
  registerAgent,
  registerSeeder,
  registerDemo,
  registerPreheat,
  registerStatus,
]

/** The only code that knows both binaries. Returns the process exit code. */
export function main(
  argv: readonly string[],
  {
    io = { stdout: process.stdout, stderr: process.stderr },
    env = process.env,
  }: { io?: CliIo; env?: NodeJS.ProcessEnv } = {},
): Promise<number> {
  return runCli(argv.length === 0 ? ['--help'] : argv, io, env, COMMANDS, {
    description: 'Peer-to-peer distribution of container-image layers.',
    help: 'Run `shoal <command> --help` (or -h) for the flags of a command; `shoal help <command>` is the same.',
  })
}
