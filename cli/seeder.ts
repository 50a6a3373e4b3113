import type { Command } from 'commander'
import { SEEDER_OPTIONS } from '../seeder/config.ts'
import { addConfigOptions, configFlags } from '../shared/config/index.ts'
import type { RegisterCommand } from './program.ts'

/** `shoal seeder`: every flag of `SEEDER_OPTIONS`, each also a SHOAL_* variable and a key of --config. */
export const registerSeeder: RegisterCommand = (program, ctx) => {
  const cmd = program
    .command('seeder')
    .description('run a seeder beside the origin: pulls each blob once and seeds the swarm')
  addConfigOptions(cmd, SEEDER_OPTIONS)
    .allowExcessArguments(true)
    .action(async (_opts: unknown, self: Command) => {
      const { seederMain } = await import('../seeder/main.ts')
      ctx.exit(await seederMain(configFlags(self, SEEDER_OPTIONS), ctx.env))
    })
}
