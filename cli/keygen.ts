import type { CliIo } from './io.ts'
import type { RegisterCommand } from './program.ts'

/**
 * `shoal keygen swarm-key FILE` and `shoal keygen identity FILE`: keys made before a swarm starts, so a
 * Kubernetes Secret can hold them and every agent can name each seeder's peer id up front. Neither
 * overwrites a file.
 */
export const registerKeygen: RegisterCommand = (program, ctx) => {
  const keygen = program
    .command('keygen')
    .summary('write a swarm key or a node identity: keygen swarm-key|identity FILE')
  keygen
    .command('swarm-key')
    .description('write a pre-shared swarm key (@libp2p/pnet format, mode 0600) for --swarm-key')
    .argument('<FILE>', 'where to write it; an existing file is never overwritten')
    .action(async (file: string) => ctx.exit(await keygenSwarmKey(file, ctx.io)))
  keygen
    .command('identity')
    .description(
      "write a node identity (Ed25519, libp2p's protobuf form, mode 0600) for --identity; prints its peer id",
    )
    .argument('<FILE>', 'where to write it; an existing file is never overwritten')
    .action(async (file: string) => ctx.exit(await keygenIdentity(file, ctx.io)))
}

export async function keygenSwarmKey(file: string, io: CliIo): Promise<number> {
  const { writeFile } = await import('node:fs/promises')
  const { generateSwarmKey } = await import('../shared/p2p/index.ts')
  try {
    await writeFile(file, generateSwarmKey(), { mode: 0o600, flag: 'wx', flush: true })
  } catch (err) {
    return fail('swarm-key', file, err, io)
  }
  io.stdout.write(`wrote swarm key ${file}\n`)
  return 0
}

export async function keygenIdentity(file: string, io: CliIo): Promise<number> {
  const { writeNewIdentity } = await import('../shared/p2p/index.ts')
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
  let peerId: string
  try {
    peerId = peerIdFromPrivateKey(await writeNewIdentity(file)).toString()
  } catch (err) {
    return fail('identity', file, err, io)
  }
  // The peer id alone on stdout, so scripts can take it: `ID=$(shoal keygen identity seeder-0.key)`.
  io.stdout.write(`${peerId}\n`)
  return 0
}

function fail(what: string, file: string, err: unknown, io: CliIo): number {
  const code = (err as NodeJS.ErrnoException).code
  const why = code === 'EEXIST' ? 'file exists, not overwritten' : (err as Error).message
  io.stderr.write(`shoal keygen ${what}: ${file}: ${why}\n`)
  return 1
}
