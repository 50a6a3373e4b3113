import { agentMain } from '../agent/main.ts'
import { seederMain } from '../seeder/main.ts'

const USAGE = `usage: shoal <command> [flags]

commands:
  agent     run the node agent: a /v2/ registry mirror on this host
  seeder    run a seeder beside the origin: pulls each blob once and seeds the swarm
  demo      run the offline demo (what \`npm start\` does)
  preheat   ask a seeder to pull an image into the swarm ahead of time: preheat --seeder URL IMAGE
  status    print a node's status: status --agent URL | --seeder URL
  help      show this text

Run \`shoal <command> --help\` for the flags of a command.`

/** The only code that knows both binaries. Returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'agent':
      if (rest.includes('--help')) return help((await import('../agent/config.ts')).AGENT_OPTIONS, 'agent')
      return agentMain(rest, process.env)
    case 'seeder':
      if (rest.includes('--help')) return help((await import('../seeder/config.ts')).SEEDER_OPTIONS, 'seeder')
      return seederMain(rest, process.env)
    case 'demo':
      return (await import('./demo/main.ts')).demoMain(rest, process.env)
    case 'preheat':
      return (await import('./preheat.ts')).preheatMain(rest, { stdout: process.stdout, stderr: process.stderr })
    case 'status':
      return (await import('./status.ts')).statusMain(rest, { stdout: process.stdout, stderr: process.stderr })
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`)
      return 0
    default:
      process.stderr.write(`shoal: unknown command ${JSON.stringify(command)}\n${USAGE}\n`)
      return 2
  }
}

function help(options: Record<string, { flag: string; describe: string; default?: unknown }>, command: string): number {
  const lines = Object.values(options).map((o) => {
    const def =
      o.default === undefined || (Array.isArray(o.default) && o.default.length === 0)
        ? ''
        : ` (default ${String(o.default)})`
    const env = `SHOAL_${o.flag.toUpperCase().replaceAll('-', '_')}`
    return `  --${o.flag.padEnd(20)} ${o.describe}${def}  [${env}]`
  })
  process.stdout.write(
    `usage: shoal ${command} [flags]\n\n${lines.join('\n')}\n  --config FILE          YAML file with the same keys\n`,
  )
  return 0
}
