import { readFileSync } from 'node:fs'
import { ConfigError, type ConfigSources } from '../config/index.ts'
import { waitForSignal } from './signals.ts'

export interface RunningService {
  readonly peerId: string | undefined
  readonly multiaddrs: readonly string[]
  close(): Promise<void>
}

/**
 * The life of `shoal agent` / `shoal seeder`: a bad config is one line and exit 2; the signal
 * handler is in place before start-up, so a SIGTERM at any time drains and exits 0.
 */
export async function runService<C>(
  name: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  load: (sources: ConfigSources) => C,
  start: (config: C) => Promise<RunningService>,
): Promise<number> {
  let config: C
  try {
    config = load({ argv, env, readFile: (p) => readFileSync(p, 'utf8') })
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`shoal ${name}: ${err.message}\n`)
      return 2
    }
    throw err
  }
  const signalled = waitForSignal()
  const service = await start(config)
  if (service.peerId !== undefined) {
    process.stdout.write(`peer id: ${service.peerId}\n${service.multiaddrs.map((m) => `listening: ${m}`).join('\n')}\n`)
  }
  await signalled
  await service.close()
  return 0
}
