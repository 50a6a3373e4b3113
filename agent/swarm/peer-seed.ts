import type { PrivateKey } from '@libp2p/interface'
import {
  ChunkMapBuilder,
  type CompletedChunk,
  chunkDigestOf,
  type SignedChunkMap,
  signChunkAttestation,
  signChunkMap,
} from '../../shared/chunks/index.ts'
import type { Logger } from '../../shared/log/index.ts'
import type { Digest } from '../../shared/oci/index.ts'
import type { Upstream } from '../../shared/origin/index.ts'
import type { ContentStore, PartialBlob } from '../../shared/store/index.ts'
import { LiveBlob, type LiveBlobs } from '../../shared/swarm/live.ts'
import type { MapStore } from '../../shared/swarm/maps/index.ts'
import type { StoreChunkSource } from '../../shared/swarm/source.ts'
import type { Downloads } from '../blobs/download.ts'
import type { OriginPullWatch } from '../blobs/origin-fetch.ts'
import type { BlobFiller } from '../blobs/service.ts'
import type { Announcer } from './provider.ts'

export interface PeerSeedInit {
  readonly live: LiveBlobs
  readonly maps: MapStore
  readonly source: StoreChunkSource
  readonly announcer: Announcer
  /** The node's identity key: it signs what this agent pulled from the origin. */
  readonly key: PrivateKey
  readonly log: Logger
}

/**
 * An agent pulling a blob from the origin with peer proofs on does what a seeder does with a cold blob: each chunk
 * is hashed and signed (an attestation) the moment its last byte is on disk, and is servable to peers at once, so
 * the blob flows origin → this agent → the swarm chunk by chunk. The map is signed once the whole-blob digest has
 * checked out. Peers accept these proofs only in peer-proof mode, and the whole-blob digest still decides at each
 * of them before anything is committed.
 */
export function attestingWatch(init: PeerSeedInit, digest: Digest): OriginPullWatch {
  const { live, maps, source, announcer, key, log } = init
  let blob: LiveBlob | undefined
  let builder: ChunkMapBuilder | undefined
  /** Chunks past the resumed prefix that the swarm wrote before this pull: their disk bytes are what peers get. */
  let swarmWritten = new Set<number>()
  let signed: SignedChunkMap | undefined
  const attest = async (c: CompletedChunk): Promise<void> => {
    const b = blob!
    if (swarmWritten.has(c.index)) {
      // The origin's bytes for this chunk were not written (the chunk was on disk): vouch only for disk bytes
      // that match what the origin sent. A mismatch is left unproven; the digest check at commit then fails.
      const onDisk = chunkDigestOf(await b.partial.readChunk(c.index))
      if (onDisk !== c.chunk) {
        log.warn({ digest, index: c.index }, 'chunk from the swarm differs from the origin, not vouched for')
        return
      }
    }
    const a = await signChunkAttestation(
      { digest, size: b.size, chunkSize: b.chunkSize, index: c.index, chunk: c.chunk },
      key,
    )
    await maps.putAttestation(a)
    b.markVerified(c.index, a)
  }
  return {
    async partial(p: PartialBlob, from: number) {
      if (blob !== undefined) live.remove(digest)
      blob = new LiveBlob(p)
      builder = new ChunkMapBuilder(digest, p.chunkSize)
      const prefixChunks = Math.ceil(from / p.chunkSize)
      swarmWritten = new Set([...p.written.indexes()].filter((i) => i >= prefixChunks))
      live.add(blob)
      // The prefix on disk is hashed again and vouched for as if it had just arrived (its bytes are the ones the
      // blob's digest will be checked over).
      if (from > 0) {
        for await (const data of p.read({ start: 0, end: from })) {
          for (const c of builder.update(data as Uint8Array)) await attest(c)
        }
      }
      announcer.announce(digest)
    },
    async bytes(bytes: Uint8Array) {
      for (const c of builder!.update(bytes)) await attest(c)
    },
    async complete(p: PartialBlob) {
      // Throws DigestMismatchError when the bytes are not the blob: nothing is signed then.
      const { last, map } = builder!.finish(p.size)
      if (last !== undefined) await attest(last)
      signed = await signChunkMap(map, key)
    },
    async end(committed: boolean) {
      try {
        if (committed && blob !== undefined && signed !== undefined) {
          source.noteComplete(digest, blob.size, blob.chunkSize)
          await maps.put(signed)
        }
      } finally {
        if (blob !== undefined && live.get(digest) === blob) live.remove(digest)
      }
    },
  }
}

export class PeerFetchRefusedError extends Error {
  override name = 'PeerFetchRefusedError'
  readonly code = 'PEER_FETCH_REFUSED'
}

export interface PeerFetchInit {
  readonly store: Pick<ContentStore, 'stat'>
  readonly maps: Pick<MapStore, 'get'>
  readonly downloads: Downloads
  /** The filler client pulls use: an agent asked to pull takes part in the same election before it goes anywhere. */
  readonly fill: BlobFiller
  /** The upstream a registry name means, or undefined when this agent does not pull from that registry for peers. */
  readonly upstreamFor: (registry: string) => Upstream | undefined
  readonly chunkSize: number
  /** Agent shutdown: ends downloads peers started. */
  readonly signal: AbortSignal
}

/**
 * A peer's `fetch` (peer proofs on): it elected this agent to pull a blob for the swarm. The download starts (or
 * the one under way is joined) like a client's, through the fill policy, so this agent in turn asks the candidate
 * it ranks higher, or pulls from the origin when it ranks itself first; the answer is the geometry once known.
 * Authorization is this agent's own (its configured credentials, checked at the origin): the asker checked its
 * client's already, and a blob this agent may not read is refused.
 */
export function peerFetch(
  init: PeerFetchInit,
): (
  digest: Digest,
  registry: string,
  name: string,
  signal: AbortSignal,
) => Promise<{ size: number; chunkSize: number }> {
  return async (digest, registry, name, signal) => {
    const upstream = init.upstreamFor(registry)
    if (upstream === undefined) throw new PeerFetchRefusedError(`this agent does not pull from ${registry} for peers`)
    const info = await init.store.stat(digest)
    if (info !== undefined) {
      const map = await init.maps.get(digest)
      return { size: info.size, chunkSize: map?.map.chunkSize ?? init.chunkSize }
    }
    const { download } = init.downloads.joinUnasked(
      init.store as ContentStore,
      init.fill,
      { upstream, name, digest },
      init.signal,
    )
    const size = await abortable(download.size, signal)
    return { size, chunkSize: download.partial?.chunkSize ?? init.chunkSize }
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
