import type { Command } from 'commander'
import { AGENT_OPTIONS } from '../agent/config.ts'
import { addConfigOptions, configFlags } from '../shared/config/index.ts'
import type { RegisterCommand } from './program.ts'

/** `shoal agent`: every flag of `AGENT_OPTIONS`, each also a SHOAL_* variable and a key of --config. */
export const registerAgent: RegisterCommand = (program, ctx) => {
  const cmd = program.command('agent').description('run the node agent: a /v2/ registry mirror on this host')
  addConfigOptions(cmd, AGENT_OPTIONS)
    .allowExcessArguments(true)
    .action(async (_opts: unknown, self: Command) => {
      const { agentMain } = await import('../agent/main.ts')
      ctx.exit(await agentMain(configFlags(self, AGENT_OPTIONS), ctx.env))
    })
}
