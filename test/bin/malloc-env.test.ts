import { describe, expect, it } from 'vitest'
import { MALLOC_TUNABLE, mallocRestartEnv } from '../../bin/malloc-env.js'

describe('mallocRestartEnv', () => {
  it('restarts the agent and the seeder on Linux with one malloc arena, keeping the rest of the environment', () => {
    for (const cmd of ['agent', 'seeder']) {
      expect(mallocRestartEnv([cmd, '--listen', ':5000'], { PATH: '/bin' }, 'linux', true)).toEqual({
        PATH: '/bin',
        GLIBC_TUNABLES: MALLOC_TUNABLE,
      })
    }
    expect(MALLOC_TUNABLE).toBe('glibc.malloc.arena_max=1')
  })

  it("adds to the user's own tunables", () => {
    expect(mallocRestartEnv(['agent'], { GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' }, 'linux', true)).toEqual({
      GLIBC_TUNABLES: `glibc.malloc.tcache_count=0:${MALLOC_TUNABLE}`,
    })
  })

  it('does not restart twice, nor over an arena limit the user set', () => {
    const once = mallocRestartEnv(['agent'], {}, 'linux', true)
    expect(once).toBeDefined()
    expect(mallocRestartEnv(['agent'], once!, 'linux', true)).toBeUndefined()
    expect(mallocRestartEnv(['seeder'], { GLIBC_TUNABLES: 'glibc.malloc.arena_max=4' }, 'linux', true)).toBeUndefined()
  })

  it('leaves short commands, other systems and a Node without execve alone', () => {
    expect(mallocRestartEnv(['status'], {}, 'linux', true)).toBeUndefined()
    expect(mallocRestartEnv([], {}, 'linux', true)).toBeUndefined()
    expect(mallocRestartEnv(['agent'], {}, 'darwin', true)).toBeUndefined()
    expect(mallocRestartEnv(['agent'], {}, 'linux', false)).toBeUndefined()
  })
})
