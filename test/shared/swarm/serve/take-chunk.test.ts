import type { PeerId } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { chunkCount, chunkRange } from '../../../../shared/chunks/chunk-map.ts'
import type { Digest } from '../../../../shared/oci/digest.ts'
import { type ChunkSource, seederUploadSlots, takeChunk } from '../../../../shared/swarm/serve/index.ts'
import { SITE_SMALL_BLOB_BYTES } from '../../../../shared/swarm/sites.ts'

const LAYER = `sha256:${'a'.repeat(64)}` as Digest
const CONFIG = `sha256:${'c'.repeat(64)}` as Digest
const CHUNK = 1024 * 1024
/** A layer of two full chunks and a small last one; an image config of 949 bytes. */
const sizes = new Map<Digest, number>([
  [LAYER, 2 * CHUNK + 3072],
  [CONFIG, 949],
])

const source: ChunkSource = {
  map: async () => undefined,
  have: (digest) => {
    const size = sizes.get(digest)!
    return { size, chunkSize: CHUNK, bitfield: Bitfield.full(chunkCount(size, CHUNK)), complete: true }
  },
  waitHave: async () => {},
  readChunk: async (digest, index) => {
    const { start, end } = chunkRange({ size: sizes.get(digest)!, chunkSize: CHUNK }, index)
    return { bytes: new Uint8Array(end - start) }
  },
}

/** Receivers named `<site>/<id>` are in that site. */
const siteOf = (peer: string): string | undefined => peer.split('/')[0]
const ask = (peer: string) => ({
  peer: { toString: () => peer } as unknown as PeerId,
  signal: AbortSignal.timeout(5000),
})

describe('takeChunk on a seeder with sites', () => {
  it('sends a chunk once into a site, but a small one to every member that asks', async () => {
    expect(3072).toBeLessThanOrEqual(SITE_SMALL_BLOB_BYTES)
    const slots = seederUploadSlots(8, { siteOf, outside: () => true })
    const got = async (peer: string, digest: Digest, index: number) => {
      const r = await takeChunk(source, slots, digest, index, ask(peer))
      if (r.t === 'chunk') r.release()
      return r.t
    }
    // A full chunk: one member of site a gets it; another member is turned away (it takes the first one's copy).
    expect(await got('a/1', LAYER, 0)).toBe('chunk')
    expect(await got('a/2', LAYER, 0)).toBe('busy')
    expect(await got('b/1', LAYER, 0)).toBe('chunk')
    // The layer's small last chunk and the whole config blob: every member of the site is served.
    for (const [digest, index] of [
      [LAYER, 2],
      [CONFIG, 0],
    ] as const) {
      expect(await got('a/1', digest, index)).toBe('chunk')
      expect(await got('a/2', digest, index)).toBe('chunk')
      expect(await got('a/3', digest, index)).toBe('chunk')
    }
  })

  it('with 64 KiB chunks (each as small as a small blob), still sends each full chunk once into a site', async () => {
    const small = 64 * 1024
    expect(small).toBeLessThanOrEqual(SITE_SMALL_BLOB_BYTES)
    const layer = `sha256:${'d'.repeat(64)}` as Digest
    const size = 4 * small + 100
    const smallChunks: ChunkSource = {
      ...source,
      have: () => ({ size, chunkSize: small, bitfield: Bitfield.full(chunkCount(size, small)), complete: true }),
      readChunk: async (_d, index) => {
        const { start, end } = chunkRange({ size, chunkSize: small }, index)
        return { bytes: new Uint8Array(end - start) }
      },
    }
    const slots = seederUploadSlots(8, { siteOf, outside: () => true })
    const got = async (peer: string, index: number) => {
      const r = await takeChunk(smallChunks, slots, layer, index, ask(peer))
      if (r.t === 'chunk') r.release()
      return r.t
    }
    expect(await got('a/1', 1)).toBe('chunk')
    expect(await got('a/2', 1)).toBe('busy')
    // The 100-byte last chunk: to every member.
    expect(await got('a/1', 4)).toBe('chunk')
    expect(await got('a/2', 4)).toBe('chunk')
  })
})
