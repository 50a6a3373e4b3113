import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { MALLOC_TUNABLE, mallocRestartEnv } from '../../bin/malloc-env.js'

const SHOAL = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url))

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

describe('bin/shoal.js agent', () => {
  it('runs as the same process restarted with one malloc arena', async () => {
    const data = await mkdtemp(join(tmpdir(), 'shoal-malloc-env-'))
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_') && k !== 'GLIBC_TUNABLES'),
    )
    const child = spawn(
      process.execPath,
      [SHOAL, 'agent', '--listen', '127.0.0.1:0', '--origin', 'http://127.0.0.1:9', '--data', data],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    try {
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
      child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s))
      await expect.poll(() => out, { timeout: 60_000 }).toContain('agent listening')
      // The pid spawned above is the one now serving: restarted in place, with the tunable in its environment.
      const environ = (await readFile(`/proc/${child.pid}/environ`, 'utf8')).split('\0')
      expect(environ).toContain(`GLIBC_TUNABLES=${MALLOC_TUNABLE}`)
    } finally {
      child.kill('SIGTERM')
      await once(child, 'exit')
      await rm(data, { recursive: true, force: true })
    }
  })
})
