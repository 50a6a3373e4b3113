import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadAgentConfig } from '../../agent/config.ts'
import { type RunningAgent, startAgent } from '../../agent/main.ts'
import { type DemoOrigin, startDemoOrigin } from '../../shared/sample/origin.ts'
import { createLogger } from '../../shared/log/index.ts'
import { generateSampleImage, type SampleImage } from '../../shared/sample/index.ts'

export interface Rig {
  readonly dir: string
  readonly image: SampleImage
  origin: DemoOrigin
  agent: RunningAgent
  restartOrigin(): Promise<void>
  stop(): Promise<void>
}

/** A real agent (fs store, real HTTP) in front of the embedded demo origin holding one image. */
export async function startRig(
  opts: { layers?: number; layerBytes?: number; extraArgs?: string[] } = {},
): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-agent-test-'))
  const image = await generateSampleImage({
    dir: join(dir, 'image'),
    layers: opts.layers ?? 2,
    layerBytes: opts.layerBytes ?? 256 * 1024,
    seed: 'agent-test',
  })
  let origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
  const port = new URL(origin.url).port
  const config = loadAgentConfig({
    argv: ['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', join(dir, 'agent'), ...(opts.extraArgs ?? [])],
    env: {},
    readFile: () => '',
  })
  const agent = await startAgent(config, { log: createLogger({ level: 'silent' }) })
  const rig: Rig = {
    dir,
    image,
    origin,
    agent,
    async restartOrigin() {
      origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }], port: Number(port) })
      rig.origin = origin
    },
    async stop() {
      await agent.stop()
      await rig.origin.stop().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
  return rig
}
