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

describe('agent --site and the WAN caps', () => {
  it('takes a site from the flag or SHOAL_SITE; none or an empty zone is no site', () => {
    expect(load([]).site).toBeUndefined()
    expect(load(['--site', 'store-17']).site).toBe('store-17')
    expect(load([], { SHOAL_SITE: 'eu-west-1a' }).site).toBe('eu-west-1a')
    expect(load([], { SHOAL_SITE: '' }).site).toBeUndefined()
  })

  it('refuses a site name a zone label could not hold, naming the key', () => {
    for (const bad of ['-store', 'store 17', 'a/b', 'x'.repeat(64)]) {
      expect(() => load(['--site', bad])).toThrow(ConfigError)
      expect(() => load(['--site', bad])).toThrow(/invalid config: site:/)
    }
  })

  it('reads --wan-upload-rate and --wan-download-rate as rates, 0 by default', () => {
    const c = load(['--wan-upload-rate', '3MB', '--wan-download-rate', '1MiB'])
    expect([load([]).wanUploadRate, load([]).wanDownloadRate]).toEqual([0, 0])
    expect(c.wanUploadRate).toBe(3_000_000)
    expect(c.wanDownloadRate).toBe(1024 * 1024)
  })
})

describe('agent --preheat-ttl', () => {
  it("pins a site's preheated copies for a day by default; 0 holds none", () => {
    expect(load([]).preheatTtlMs).toBe(24 * 3_600_000)
    expect(load(['--preheat-ttl', '2h']).preheatTtlMs).toBe(2 * 3_600_000)
    expect(load([], { SHOAL_PREHEAT_TTL: '0' }).preheatTtlMs).toBe(0)
  })
})
