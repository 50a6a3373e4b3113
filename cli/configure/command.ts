import type { Command } from 'commander'
import type { RegisterCommand } from '../program.ts'
import { DEFAULT_MIRROR, type Tool } from './tools.ts'

interface Flags {
  root: string
  mirror: string
  registries?: string[]
  undo?: boolean
  dryRun?: boolean
  patchConfig?: boolean
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value]

/**
 * `shoal configure containerd|docker|podman`: points a container runtime on this host (or on a host filesystem
 * mounted at --root) at the agent. Idempotent; --undo puts back what was there.
 */
export const registerConfigure: RegisterCommand = (program, ctx) => {
  const configure = program
    .command('configure')
    .summary('point containerd, Docker or podman on this host at the agent')
    .description(
      'Writes the runtime configuration that sends pulls to the agent first. Running it twice changes nothing;\n' +
        '--undo restores what was there before (backups under ROOT/var/lib/shoal/configure/).',
    )
  const tool = (name: Tool, summary: string, registries: boolean): Command => {
    const cmd = configure
      .command(name)
      .description(summary)
      .option('--root <DIR>', 'host filesystem to write under (a host mounted in a container: /host)', '/')
      .option('--mirror <URL>', 'the agent, http(s)://HOST:PORT', DEFAULT_MIRROR)
    if (registries) {
      cmd.option(
        '--registries <HOST,...>',
        'registries to mirror, comma-separated or repeated (default docker.io)',
        collect,
      )
    }
    cmd
      .option('--undo', 'remove what configure wrote and restore the files it changed')
      .option('--dry-run', 'print the diff, write nothing')
    if (name === 'containerd') {
      cmd.option('--patch-config', "set config_path in containerd's config.toml (containerd must then be restarted)")
    }
    return cmd.action(async (flags: Flags) => {
      const { runConfigure } = await import('./run.ts')
      ctx.exit(
        await runConfigure(
          name,
          {
            root: flags.root,
            mirror: flags.mirror,
            ...(flags.registries === undefined ? {} : { registries: flags.registries }),
            undo: flags.undo === true,
            dryRun: flags.dryRun === true,
            patchConfig: flags.patchConfig === true,
          },
          ctx.io,
        ),
      )
    })
  }
  tool('containerd', 'write certs.d/<host>/hosts.toml for each registry and _default, and check config_path', true)
  tool('docker', 'add the agent to registry-mirrors in etc/docker/daemon.json (Docker mirrors only Docker Hub)', false)
  tool('podman', 'add the agent as first mirror of each registry in etc/containers/registries.conf', true)
}
