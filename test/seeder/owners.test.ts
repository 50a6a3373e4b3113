import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { rendezvousOwners } from '../../seeder/owners.ts'
import { parseSeederAddr } from '../../shared/swarm/index.ts'
import type { Digest } from '../../shared/oci/index.ts'

// Ids and digests of test/shared/swarm/election.test.ts: the owner of blob-0 is C, of blob-1 A, of blob-2 B.
const A = '12D3KooWBpF5v9wwxuH4GepBKSiLPsU2KznqyXAfnPqnNPWzLKhh'
const B = '12D3KooWPdxMqm4HzsHYm2jyLExeuWLLD64f4c3syn8SkGAeNqcD'
const C = '12D3KooWCr6d344buApfXWG8obvzJ6zEWsQRsujSrMrDaDR91Ube'
const digest = (i: number) => `sha256:${createHash('sha256').update(`blob-${i}`).digest('hex')}` as Digest
const ref = (id: string) => parseSeederAddr(`/ip4/10.0.0.7/tcp/4001/p2p/${id}`)!
const client = {
  fetch: async () => ({ size: 0, chunkSize: 0 }),
  getMap: async () => undefined,
  prefetch: async () => {},
}

describe('seeder rendezvous ownership', () => {
  it('is nobody else when this seeder owns the blob, else the owner among the others', () => {
    const fromA = rendezvousOwners(A, [ref(B), ref(C)], client)
    expect(fromA(digest(0))?.id).toBe(C)
    expect(fromA(digest(1))).toBeUndefined()
    expect(fromA(digest(2))?.id).toBe(B)
    const fromB = rendezvousOwners(B, [ref(C), ref(A)], client)
    expect(fromB(digest(0))?.id).toBe(C)
    expect(fromB(digest(1))?.id).toBe(A)
    expect(fromB(digest(2))).toBeUndefined()
  })

  it('is this seeder when its own address is listed among the others', () => {
    expect(rendezvousOwners(A, [ref(A)], client)(digest(0))).toBeUndefined()
  })
})
