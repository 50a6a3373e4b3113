import { describe, expect, it } from 'vitest'
import { stopList } from '../../../shared/process/stop-list.ts'

describe('stopList', () => {
  it('runs the steps in order, each after the one before has finished, and only once', async () => {
    const ran: string[] = []
    const stop = stopList([
      async () => {
        await new Promise((r) => setTimeout(r, 5))
        ran.push('a')
      },
      () => ran.push('b'),
      () => undefined,
      async () => ran.push('c'),
    ])
    const first = stop()
    expect(stop()).toBe(first)
    await first
    await stop()
    expect(ran).toEqual(['a', 'b', 'c'])
  })

  it('ends at a step that throws, with its error, and a second call gives the same outcome', async () => {
    const ran: string[] = []
    const stop = stopList([
      () => ran.push('a'),
      () => {
        throw new Error('boom')
      },
      () => ran.push('c'),
    ])
    await expect(stop()).rejects.toThrow('boom')
    await expect(stop()).rejects.toThrow('boom')
    expect(ran).toEqual(['a'])
  })
})
