import { describe, expect, it } from 'vitest'
import {
  callerLines,
  MAX_SAMPLE_US,
  type CpuProfile,
  profileLines,
  shortUrl,
  summarizeByCaller,
  summarizeProfile,
} from '../../../bench/datapath/profile.ts'

const frame = (id: number, functionName: string, url = '', lineNumber = 0, children: number[] = []) => ({
  id,
  callFrame: { functionName, url, lineNumber },
  children,
})

// root → main → { send (×2 paths through a and b), (garbage collector), (idle) }
const profile: CpuProfile = {
  nodes: [
    frame(1, '(root)', '', 0, [2, 5, 6]),
    frame(2, 'main', 'file:///repo/agent/app.ts', 9, [3, 4]),
    frame(3, 'send', 'file:///repo/shared/store/file.ts', 99),
    frame(4, 'send', 'file:///repo/shared/store/file.ts', 99),
    frame(5, '(garbage collector)'),
    frame(6, '(idle)'),
  ],
  startTime: 0,
  endTime: 10_000,
  // samples at t = 1000, 2000, … : each sample gets the gap to the next one
  samples: [3, 4, 3, 5, 6, 6, 6, 6, 2, 3],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
}

describe('summarizeProfile', () => {
  const s = summarizeProfile(profile)
  it('merges self time of one function reached by several paths', () => {
    expect(s.top[0]).toEqual({ frame: 'send shared/store/file.ts:100', selfMs: 4, share: 0.4 })
  })
  it('reports idle and GC shares and leaves idle out of the top frames', () => {
    expect(s.totalMs).toBe(10)
    expect(s.idleShare).toBeCloseTo(0.4)
    expect(s.busyMs).toBeCloseTo(6)
    expect(s.gcShare).toBeCloseTo(0.1)
    expect(s.top.map((f) => f.frame)).not.toContain('(idle)')
    expect(s.top.map((f) => f.frame)).toEqual([
      'send shared/store/file.ts:100',
      '(garbage collector)',
      'main agent/app.ts:10',
    ])
  })
  it('falls back to hit counts without samples', () => {
    const old: CpuProfile = {
      nodes: [
        { ...frame(1, 'a'), hitCount: 3 },
        { ...frame(2, 'b'), hitCount: 1 },
      ],
      startTime: 0,
      endTime: 4000,
    }
    expect(summarizeProfile(old).top).toEqual([
      { frame: 'a', selfMs: 3, share: 0.75 },
      { frame: 'b', selfMs: 1, share: 0.25 },
    ])
  })
  it('with a window, counts only the samples taken within it (a row of the benchmark)', () => {
    // Samples at 4000 … 8000 µs: the garbage collector once, then idle.
    const w = summarizeProfile(profile, 15, { startUs: 4000, endUs: 8000 })
    expect(w.totalMs).toBe(5)
    expect(w.idleShare).toBeCloseTo(0.8)
    expect(w.top).toEqual([{ frame: '(garbage collector)', selfMs: 1, share: 0.2 }])
  })
  it('keeps the top N', () => {
    expect(summarizeProfile(profile, 1).top).toHaveLength(1)
  })
  it('renders a Markdown table, shares of all and of busy time', () => {
    const text = profileLines('agent', s).join('\n')
    expect(text).toContain('idle 40.0 %, GC 10.0 %')
    expect(text).toContain('| 4 | 40.0 % | 66.7 % | `send shared/store/file.ts:100` |')
  })
})

describe('shortUrl', () => {
  it('keeps the package path of a dependency and the repo path of our own code', () => {
    expect(shortUrl('file:///x/node_modules/fastify/lib/reply.js')).toBe('fastify/lib/reply.js')
    expect(shortUrl('file:///home/u/shoal/shared/store/file.ts')).toBe('shared/store/file.ts')
    expect(shortUrl('node:internal/streams/readable')).toBe('node:internal/streams/readable')
  })
})

describe('summarizeByCaller', () => {
  // root → onData (a dependency's socket callback) → { handle (ours) → writeBuffer (native), sendFrame (yamux) }
  const p: CpuProfile = {
    nodes: [
      frame(1, '(root)', '', 0, [2, 7, 8, 9]),
      frame(2, 'onData', 'file:///repo/node_modules/@libp2p/utils/dist/src/x.js', 0, [3, 6]),
      frame(3, 'handle', 'file:///repo/shared/swarm/bulk/server.ts', 119, [4, 5]),
      frame(4, 'writeBuffer'),
      frame(5, 'sendFrame', 'file:///repo/node_modules/@chainsafe/libp2p-yamux/dist/src/muxer.js', 9),
      frame(6, 'push', 'node:internal/streams/readable', 0),
      frame(7, '(garbage collector)'),
      frame(8, '(idle)'),
      frame(9, '(program)'),
    ],
    startTime: 0,
    endTime: 10_000,
    samples: [4, 4, 4, 5, 6, 7, 8, 8, 9, 3],
    timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  }
  const c = summarizeByCaller(p)
  it('charges time in dependencies and native calls to the nearest frame of ours, idle left out', () => {
    // busy: 8 samples of 1 ms (the last gets the mean gap, 1 ms)
    expect(c[0]).toEqual({
      caller: 'handle shared/swarm/bulk/server.ts:120',
      ms: 5,
      share: 5 / 8,
      spentIn: [
        { what: 'native writeBuffer', share: 3 / 8 },
        { what: '@chainsafe/libp2p-yamux', share: 1 / 8 },
        { what: 'own code', share: 1 / 8 },
      ],
    })
    expect(c.map((x) => x.caller)).toEqual([
      'handle shared/swarm/bulk/server.ts:120',
      '(no frame of ours)',
      '(garbage collector)',
      '(program)',
    ])
    expect(c[1]!.spentIn).toEqual([{ what: 'node:streams/readable', share: 1 / 8 }])
  })
  it('with a window, only its samples', () => {
    const w = summarizeByCaller(p, 15, { startUs: 4000, endUs: 6000 })
    expect(w.map((x) => [x.caller, x.ms])).toEqual([
      ['handle shared/swarm/bulk/server.ts:120', 1],
      ['(no frame of ours)', 1],
      ['(garbage collector)', 1],
    ])
  })
  it('renders a Markdown table', () => {
    const text = callerLines('seeder', c).join('\n')
    expect(text).toContain('| 5 | 62.5 % | `handle shared/swarm/bulk/server.ts:120` | `native writeBuffer` 37.5 %')
  })
})

describe('a sample stands for at most MAX_SAMPLE_US', () => {
  // One gap of 900 ms after the sample in `abort` (the process not scheduled), then 1 ms gaps.
  const p: CpuProfile = {
    nodes: [
      frame(1, '(root)', '', 0, [2, 3]),
      frame(2, 'abort', 'node:internal/abort_controller', 0),
      frame(3, 'work'),
    ],
    startTime: 0,
    endTime: 904_000,
    samples: [2, 3, 3, 3],
    timeDeltas: [1000, 900_000, 1000, 1000],
  }
  it('in the flat and the by-caller view', () => {
    const flat = summarizeProfile(p)
    expect(flat.top.find((f) => f.frame.startsWith('abort'))!.selfMs).toBe(MAX_SAMPLE_US / 1000)
    // Both frames are no code of ours: the long gap and the last sample (the mean gap) at most 20 ms each, 2 × 1 ms.
    expect(summarizeByCaller(p)[0]!.ms).toBe((2 * MAX_SAMPLE_US + 2000) / 1000)
  })
})
