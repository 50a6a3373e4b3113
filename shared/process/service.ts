import { readFileSync } from 'node:fs'
import type { ConfigSources } from '../config/index.ts'
import { releaseStartupMemory } from './memory.ts'
import { waitForSignal } from './signals.ts'

export interface RunningService {
  readonly peerId: string | undefined
  readonly multiaddrs: readonly string[]
  stop(): Promise<void>
}

/**
 * The life of `shoal agent` / `shoal seeder`: a bad config throws `ConfigError` (the CLI exits 2); the signal
 * handler is in place before start-up, so a SIGTERM at any time drains and exits 0.
 */
export async function runService<C>(
  name: string,
  argv: ConfigSources['argv'],
  env: NodeJS.ProcessEnv,
  load: (sources: ConfigSources) => C,
  start: (config: C) => Promise<RunningService>,
): Promise<number> {
  // A bad config throws `ConfigError` before anything starts; the CLI prints it as one line, exit 2.
  const config = load({ argv, env, readFile: (p) => readFileSync(p, 'utf8') })
  const signalled = waitForSignal()
  const service = await start(config)
  // Idle from here until the first request: hand back the memory start-up used (see memory.ts).
  releaseStartupMemory()
  if (service.peerId !== undefined) {
    process.stdout.write(`peer id: ${service.peerId}\n${service.multiaddrs.map((m) => `listening: ${m}`).join('\n')}\n`)
  }
  await signalled
  await service.stop()
  return 0
}
