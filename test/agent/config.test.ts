import { describe, expect, it } from 'vitest'
import { loadAgentConfig } from '../../agent/config.ts'
import { ConfigError } from '../../shared/config/index.ts'
import { DEFAULT_AGENT_UPLOAD_SLOTS } from '../../shared/swarm/protocol/index.ts'

const load = (argv: string[], env: Record<string, string> = {}) =>
  loadAgentConfig({
    argv: ['--origin', 'https://registry.example', '--data', '/tmp/shoal-test', ...argv],
    env,
    readFile: () => {
      throw new Error('no config file in these tests')
    },
  })

describe('agent --upload-slots', () => {
  it('defaults to the shared constant, and takes a flag or SHOAL_UPLOAD_SLOTS', () => {
    expect(load([]).uploadSlots).toBe(DEFAULT_AGENT_UPLOAD_SLOTS)
    expect(load(['--upload-slots', '6']).uploadSlots).toBe(6)
    expect(load([], { SHOAL_UPLOAD_SLOTS: '5' }).uploadSlots).toBe(5)
  })

  it('refuses what is not a count of 1 to 64, naming the option', () => {
    for (const bad of ['0', '65', '2.5', 'many']) {
      expect(() => load(['--upload-slots', bad])).toThrow(ConfigError)
      expect(() => load(['--upload-slots', bad])).toThrow(/upload-slots/)
    }
  })
})
