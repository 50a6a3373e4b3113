import type { PeerId } from '@libp2p/interface'
import type { ChunkAttestation } from '../../chunks/attestation.ts'
import type { Bitfield } from '../../chunks/bitfield.ts'
import type { SignedChunkMap } from '../../chunks/signed-map.ts'
import type { Digest } from '../../oci/digest.ts'

/** Who asked: lets a seeder advertise per peer (super-seeding) and account what it served. */
export interface RequestContext {
  readonly peer: PeerId
  readonly signal: AbortSignal
  /** The site the asker says it is in (a `have` request's `site`; edge sites). */
  readonly site?: string
}

export interface SourceHave {
  readonly size: number
  readonly chunkSize: number
  /** Chunks this peer may be told about (a super-seeding seeder tells each peer a different subset). */
  readonly bitfield: Bitfield
  /** The whole blob is verified and committed. */
  readonly complete: boolean
  /** Other peers fetching the blob, as multiaddrs ending in /p2p/<id> (a seeder's tracker hint). */
  readonly peers?: readonly string[]
}

/** What a node serves to the swarm: implemented over the content store by the agent and by the seeder. */
export interface ChunkSource {
  map(digest: Digest, ctx?: RequestContext): Promise<SignedChunkMap | undefined>
  have(digest: Digest, ctx?: RequestContext): SourceHave | undefined
  /** Resolves when what `have` returns differs from `knownCount` chunks, or when `signal` aborts. */
  waitHave(digest: Digest, knownCount: number, signal: AbortSignal, ctx?: RequestContext): Promise<void>
  /**
   * Verified chunks ONLY; undefined when not held. The bytes must be exactly the chunk's length. With `into` (exactly
   * the chunk's length), a source may read the chunk into it and return it as the bytes.
   */
  readChunk(
    digest: Digest,
    index: number,
    ctx?: RequestContext,
    into?: Uint8Array,
  ): Promise<{ bytes: Uint8Array; attestation?: ChunkAttestation } | undefined>
  /**
   * A seeder: start pulling the blob from the origin for the swarm, resolving once size and chunk size are known.
   * Implementations decide which registries they are willing to pull from.
   */
  fetch?(
    digest: Digest,
    registry: string,
    name: string,
    signal: AbortSignal,
    ctx?: RequestContext,
  ): Promise<{ size: number; chunkSize: number }>
}

/** Called after a chunk's bytes were handed to the transport (the libp2p stream or the bulk path). */
export type OnServed = (peer: PeerId, bytes: number, chunk: { readonly digest: Digest; readonly index: number }) => void
