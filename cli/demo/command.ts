import { InvalidArgumentError } from 'commander'
import type { RegisterCommand } from '../program.ts'

const wholeNumber = (max: number) => (value: string) => {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new InvalidArgumentError(`a whole number from 1 to ${max}`)
  return n
}

/** `shoal demo [--agents N] [--layers N] [--layer-mib N]`: what `npm start` runs. */
export const registerDemo: RegisterCommand = (program, ctx) => {
  program
    .command('demo')
    .description('run the offline demo (what `npm start` does)')
    .option('--agents <N>', 'agents in the local swarm', wholeNumber(32), 3)
    .option('--layers <N>', 'layers of the generated image', wholeNumber(16), 3)
    .option('--layer-mib <N>', 'MiB per layer', wholeNumber(1024), 16)
    .action(async (flags: { agents: number; layers: number; layerMib: number }) => {
      const { demoMain } = await import('./main.ts')
      ctx.exit(await demoMain({ agents: flags.agents, layers: flags.layers, layerMiB: flags.layerMib }))
    })
}
