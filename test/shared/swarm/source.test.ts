import { setImmediate as turn } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { Bitfield } from '../../../shared/chunks/index.ts'
import { digestOf } from '../../../shared/oci/index.ts'
import { MemoryContentStore } from '../../../shared/store/index.ts'
import { LiveBlobs } from '../../../shared/swarm/live.ts'
import { MemoryMapStore } from '../../../shared/swarm/maps/index.ts'
import { StoreChunkSource } from '../../../shared/swarm/source.ts'

const digest = digestOf(Buffer.from('store-chunk-source'))
const [alice, bob] = await Promise.all([1, 2].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))

/** A complete blob of 4 chunks whose advertisement (super-seeding) the test widens by hand. */
function narrowedSource() {
  const state = { shown: 1 }
  const source = new StoreChunkSource({
    store: new MemoryContentStore(),
    maps: new MemoryMapStore(),
    live: new LiveBlobs(),
    chunkSize: 4,
    advertise: (_digest, have) => {
      const b = new Bitfield(have.bitfield.length)
      for (let i = 0; i < state.shown; i++) b.set(i)
      return b
    },
  })
  source.noteComplete(digest, 16, 4)
  return { source, state }
}

/** Lets pending promise callbacks and immediates run; far shorter than the 200 ms recheck. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await turn()
}

describe('StoreChunkSource.waitHave on a narrowed answer', () => {
  const stops: AbortController[] = []
  afterEach(() => {
    for (const s of stops.splice(0)) s.abort()
  })

  it('answers as soon as a readvertise for its peer widens what it may be told, not at the next recheck', async () => {
    const { source, state } = narrowedSource()
    const stop = new AbortController()
    stops.push(stop)
    let done = false
    const ctx = { peer: alice!, signal: stop.signal }
    const waiting = source.waitHave(digest, 1, stop.signal, ctx).then(() => (done = true))
    await settle()
    expect(done).toBe(false)
    state.shown = 2
    source.readvertise(digest, bob!.toString())
    await settle()
    expect(done).toBe(false)
    source.readvertise(digest, alice!.toString())
    await settle()
    expect(done).toBe(true)
    await waiting
    expect(source.have(digest, ctx)?.bitfield.count).toBe(2)
  })

  it('keeps waiting when a readvertise changes nothing for this peer', async () => {
    const { source } = narrowedSource()
    const stop = new AbortController()
    stops.push(stop)
    let done = false
    void source.waitHave(digest, 1, stop.signal, { peer: alice!, signal: stop.signal }).then(() => (done = true))
    await settle()
    source.readvertise(digest)
    await settle()
    expect(done).toBe(false)
    stop.abort()
    await settle()
    expect(done).toBe(true)
  })
})
