import { describe, expect, it } from 'vitest'
import type { ChunkAttestation, SignedChunkMap } from '../../../shared/chunks/index.ts'
import { signersToBan } from '../../../agent/swarm/distrust.ts'

const attestation = (index: number, signer: string) => ({ index, signer }) as unknown as ChunkAttestation
const map = (signer: string) => ({ signer }) as unknown as SignedChunkMap

describe('signersToBan', () => {
  it('bans every agent that signed a chunk proof or the map, once each', () => {
    const attestations = new Map([
      [0, attestation(0, 'a')],
      [1, attestation(1, 'b')],
      [2, attestation(2, 'a')],
    ])
    expect(signersToBan({ attestations, map: map('c') }, new Set()).sort()).toEqual(['a', 'b', 'c'])
  })

  it('never bans a trusted seeder for a digest an agent may have mangled', () => {
    const attestations = new Map([
      [0, attestation(0, 'seeder')],
      [1, attestation(1, 'a')],
    ])
    expect(signersToBan({ attestations, map: map('seeder') }, new Set(['seeder']))).toEqual(['a'])
  })
})
