import { describe, expect, it } from 'vitest'
import type { ChunkAttestation } from '../../../../shared/chunks/index.ts'
import { type ChunkVerifier, proveResumed, type ResumedChunks } from '../../../../shared/swarm/session/index.ts'
import { attestation, content, hash } from './fakes.ts'

/** Chunks on disk (index → bytes) with kept attestations; records what was proven. */
function disk(
  onDisk: ReadonlyMap<number, Uint8Array>,
  kept: ReadonlyMap<number, ChunkAttestation> = new Map(),
): ResumedChunks & { proven_: [number, ChunkAttestation | undefined][]; reads: number[] } {
  const proven_: [number, ChunkAttestation | undefined][] = []
  const reads: number[] = []
  return {
    proven_,
    reads,
    written: () => onDisk.keys(),
    read: async (index) => {
      reads.push(index)
      return onDisk.get(index)!
    },
    attestation: (index) => kept.get(index),
    proven: (index, a) => proven_.push([index, a]),
  }
}

/** The session's verifier shape: a map known for `mapped` chunks, attestations trusted when 'seeder' signed them. */
function verifier(mapped: ReadonlySet<number>): ChunkVerifier & { checked: number[] } {
  const checked: number[] = []
  return {
    checked,
    fromMap: (index) => (mapped.has(index) ? hash(content(index)) : undefined),
    recheckMap: () => false,
    attested: (att) => (att as unknown as { signer: string }).signer === 'seeder',
    check(index, chunk, bytes) {
      checked.push(index)
      if (hash(bytes) !== chunk) throw new Error('chunk hash mismatch')
    },
  }
}

const corrupt = (index: number): Uint8Array => content(index).map((b) => b ^ 0xff)

describe('proveResumed: chunks on disk are proven by the session verifier before they count', () => {
  it('proves chunks against the trusted map through verifier.check, and keeps their attestation', async () => {
    const a1 = attestation(1, 'seeder')
    const d = disk(
      new Map([
        [0, content(0)],
        [1, content(1)],
        [2, corrupt(2)],
      ]),
      new Map([[1, a1]]),
    )
    const v = verifier(new Set([0, 1, 2]))
    expect(await proveResumed(d, v, new AbortController().signal)).toBe(2)
    expect(d.proven_).toEqual([
      [0, undefined],
      [1, a1],
    ])
    // Every chunk went through the one verifier, the corrupt one included (and it was not proven).
    expect(v.checked).toEqual([0, 1, 2])
  })

  it('without a map, only an attestation the verifier trusts proves a chunk', async () => {
    const good = attestation(0, 'seeder')
    const forged = attestation(1, 'mallory')
    const d = disk(
      new Map([
        [0, content(0)],
        [1, content(1)],
        [2, content(2)],
      ]),
      new Map([
        [0, good],
        [1, forged],
      ]),
    )
    const v = verifier(new Set())
    expect(await proveResumed(d, v, new AbortController().signal)).toBe(1)
    expect(d.proven_).toEqual([[0, good]])
    // Nothing to prove chunks 1 and 2 with: their bytes are not even read.
    expect(d.reads).toEqual([0])
  })

  it('an attested chunk whose bytes do not match stays unproven', async () => {
    const d = disk(new Map([[3, corrupt(3)]]), new Map([[3, attestation(3, 'seeder')]]))
    expect(await proveResumed(d, verifier(new Set()), new AbortController().signal)).toBe(0)
    expect(d.proven_).toEqual([])
  })

  it('stops when the download is aborted', async () => {
    const ac = new AbortController()
    ac.abort(new Error('shutting down'))
    const d = disk(new Map([[0, content(0)]]))
    await expect(proveResumed(d, verifier(new Set([0])), ac.signal)).rejects.toThrow('shutting down')
    expect(d.proven_).toEqual([])
  })
})
