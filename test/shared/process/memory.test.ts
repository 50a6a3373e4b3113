import { describe, expect, it } from 'vitest'
import { releaseStartupMemory, youngGenerationBytes } from '../../../shared/process/memory.ts'

const MiB = 1024 * 1024

/** Start-up in miniature: many short-lived objects, enough of them surviving a scavenge that V8 grows its young generation. */
function allocateLikeStartUp(): number {
  let kept: { i: number; a: number[] }[] = []
  let sum = 0
  for (let i = 0; i < 3_000_000; i++) {
    kept.push({ i, a: [i] })
    if (kept.length > 200_000) {
      sum += kept.length
      kept = []
    }
  }
  return sum + kept.length
}

describe('releaseStartupMemory', () => {
  it('gives back the young generation start-up grew, and leaves no global gc behind', () => {
    const hadGc = 'gc' in globalThis
    expect(allocateLikeStartUp()).toBeGreaterThan(0)
    const before = youngGenerationBytes()
    // Guards the test itself: without a grown young generation there is nothing to give back.
    expect(before).toBeGreaterThan(8 * MiB)
    releaseStartupMemory()
    const after = youngGenerationBytes()
    expect(after).toBeLessThan(before / 4)
    expect(after).toBeLessThanOrEqual(4 * MiB)
    expect('gc' in globalThis).toBe(hadGc)
  })
})
