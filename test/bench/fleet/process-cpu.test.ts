import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { CLOCK_TICKS_PER_S } from '../../../bench/datapath/proc.ts'
import {
  cpuByKind,
  descendants,
  parseStatTimes,
  processKind,
  type ProcessTimes,
  sampleProcesses,
} from '../../../bench/fleet/process-cpu.ts'

describe('parseStatTimes', () => {
  it('reads utime + stime and the reaped children’s time, counting fields from the last parenthesis', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
    const line = '42 (we) ird (x)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 1000 0 0'
    expect(parseStatTimes(line)).toEqual({ ticks: 300, childTicks: 10, comm: 'we) ird (x)', ppid: 1 })
  })

  it('refuses a line that is not a stat line', () => {
    expect(() => parseStatTimes('nothing here')).toThrow(/stat line/)
    expect(() => parseStatTimes('1 (a) S 1 2')).toThrow(/utime/)
  })
})

describe('processKind', () => {
  const argv = (...a: string[]): string => `${a.join('\0')}\0`
  it('names Shoal agents and seeders by the command after the entry point', () => {
    expect(processKind(argv('/usr/bin/node', '/src/shoal/bin/shoal.js', 'agent', '--listen', ':5000'), 'node')).toBe(
      'shoal agent',
    )
    expect(processKind(argv('node', '/src/bin/shoal.js', 'seeder', '--origin', 'http://o'), 'node')).toBe(
      'shoal seeder',
    )
    expect(processKind(argv('node', '/src/bin/shoal.js', 'preheat'), 'node')).toBe('shoal (other)')
  })

  it('names the registry, the pull client and kernel threads, and the rest other', () => {
    expect(processKind(argv('/usr/bin/docker-registry', 'serve', 'c.yml'), 'docker-registry')).toBe('docker-registry')
    expect(processKind(argv('skopeo', 'copy'), 'skopeo')).toBe('pull client (skopeo)')
    expect(processKind(argv('/bin/bash'), 'bash')).toBe('other')
  })
})

describe('cpuByKind', () => {
  const t = (kind: string, ticks: number, childTicks = 0, ppid = 1): ProcessTimes => ({ kind, ppid, ticks, childTicks })

  it('sums the growth per kind, counts new processes whole, and puts the harness’s reaped children in their row', () => {
    const before = new Map([
      [1, t('shoal agent', 100)],
      [2, t('shoal agent', 200)],
      [3, t('docker-registry', 10)],
      [9, t('bench harness', 50, 40)],
      [7, t('other', 5)], // gone by the end: left out
    ])
    const after = new Map([
      [1, t('shoal agent', 300)],
      [2, t('shoal agent', 250)],
      [3, t('docker-registry', 10)],
      [4, t('shoal seeder', 80)], // started in the window
      [9, t('bench harness', 60, 140)],
    ])
    const rows = cpuByKind(before, after, 9)
    const s = (ticks: number): number => ticks / CLOCK_TICKS_PER_S
    expect(rows).toEqual([
      { kind: 'shoal agent', processes: 2, seconds: s(250) },
      { kind: 'pull client (skopeo)', processes: 0, seconds: s(100) },
      { kind: 'shoal seeder', processes: 1, seconds: s(80) },
      { kind: 'bench harness', processes: 1, seconds: s(10) },
    ])
  })

  it('leaves out a pid reused by another program', () => {
    const rows = cpuByKind(new Map([[5, t('shoal agent', 100)]]), new Map([[5, t('other', 30)]]), 1)
    expect(rows).toEqual([])
  })
})

describe('descendants', () => {
  it('keeps the root and every process below it, however deep, and nothing else', () => {
    const t = (ppid: number): ProcessTimes => ({ kind: 'other', ppid, ticks: 0, childTicks: 0 })
    const all = new Map([
      [10, t(1)],
      [11, t(10)],
      [12, t(11)],
      [20, t(1)],
      [21, t(20)],
    ])
    expect([...descendants(all, 10).keys()].sort()).toEqual([10, 11, 12])
  })
})

describe('sampleProcesses', () => {
  it('sees a busy child and, once reaped, its time in the harness’s child time', async () => {
    const before = await sampleProcesses()
    const child = spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 300) {}'])
    await once(child, 'exit')
    const after = await sampleProcesses()
    expect([...after.keys()]).toEqual([process.pid]) // nothing of the rest of the machine
    const self = after.get(process.pid)
    expect(self?.kind).toBe('bench harness')
    const grew = (self?.childTicks ?? 0) - (before.get(process.pid)?.childTicks ?? 0)
    expect(grew / CLOCK_TICKS_PER_S).toBeGreaterThan(0.1)
  })
})
