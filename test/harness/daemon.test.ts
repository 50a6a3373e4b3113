import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Daemon, DaemonError, liveDaemons } from '../../harness/daemon.ts'

const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
})

/** A node child that prints `count` numbered lines, then `ready`, then waits (ignoring SIGTERM when asked). */
function script(count: number, ignoreTerm = false): string[] {
  const term = ignoreTerm ? "process.on('SIGTERM', () => {});" : ''
  return [
    '-e',
    `${term}for (let i = 0; i < ${count}; i++) console.log('line ' + i); console.log('ready'); setInterval(() => {}, 1000)`,
  ]
}

describe('Daemon (the one the e2e tests and the fleet bench share)', () => {
  it('keeps every line by default, awaits one, and stops with SIGTERM', async () => {
    const d = new Daemon('all', process.execPath, script(50))
    await d.waitForLine((l) => (l === 'ready' ? true : undefined))
    expect(d.lines).toHaveLength(51)
    expect(liveDaemons.has(d)).toBe(true)
    expect(await d.stop()).toEqual({ code: null, signal: 'SIGTERM' })
    expect(d.running).toBe(false)
    expect(liveDaemons.has(d)).toBe(false)
  })

  it('keeps only the last keepLines in memory, and every line in its log file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-daemon-'))
    dirs.push(dir)
    const logFile = join(dir, 'd.log')
    const d = new Daemon('bounded', process.execPath, script(50), { keepLines: 5, logFile })
    await d.waitForLine((l) => (l === 'ready' ? true : undefined))
    expect(d.lines).toEqual(['line 46', 'line 47', 'line 48', 'line 49', 'ready'])
    await d.stop()
    expect((await readFile(logFile, 'utf8')).trim().split('\n')).toHaveLength(51)
  })

  it('kills a daemon that ignores SIGTERM after its grace, and fails a wait when it exits', async () => {
    const d = new Daemon('stubborn', process.execPath, script(0, true), { stopGraceMs: 100 })
    await d.waitForLine((l) => (l === 'ready' ? true : undefined))
    const waiting = d.waitForLine((l) => (l === 'never' ? true : undefined))
    expect(await d.stop()).toEqual({ code: null, signal: 'SIGKILL' })
    await expect(waiting).rejects.toBeInstanceOf(DaemonError)
  })
})
