import type { ChunkAttestation } from '../chunks/attestation.ts'
import { Bitfield } from '../chunks/bitfield.ts'
import type { SignedChunkMap } from '../chunks/signed-map.ts'
import type { Digest } from '../oci/digest.ts'
import type { PartialBlob } from '../store/index.ts'

/**
 * A blob being filled right now, as the swarm may see it: only chunks in `verified` are ever
 * served to a peer (checked against a trusted map or attestation, or, on a seeder, hashed and
 * attested as they came from the origin). `written` chunks of the partial are not enough: bytes
 * from the origin are only proven by the whole-blob digest.
 */
export class LiveBlob {
  readonly digest: Digest
  readonly size: number
  readonly chunkSize: number
  readonly partial: PartialBlob
  readonly verified: Bitfield
  readonly attestations = new Map<number, ChunkAttestation>()
  map: SignedChunkMap | undefined
  #waiters = new Set<() => void>()

  constructor(partial: PartialBlob, map?: SignedChunkMap) {
    this.digest = partial.digest
    this.size = partial.size
    this.chunkSize = partial.chunkSize
    this.partial = partial
    this.verified = new Bitfield(partial.chunkCount)
    this.map = map
  }

  /** Marks a chunk servable (it is on disk and proven); wakes long-polling peers. */
  markVerified(index: number, attestation?: ChunkAttestation): boolean {
    if (attestation !== undefined) this.attestations.set(index, attestation)
    const fresh = this.verified.set(index)
    if (fresh) this.notify()
    return fresh
  }

  notify(): void {
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const w of waiters) w()
  }

  /** Resolves on the next change (or abort). */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve()
      const done = () => {
        cancel()
        signal.removeEventListener('abort', done)
        resolve()
      }
      const cancel = this.onNextChange(done)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /**
   * Calls `waiter` once, on the next change; the returned function takes it back. For a waiter that already has
   * its own way to stop (a long poll's timer), this spares an AbortController, and the DOMException its abort()
   * makes, per wait.
   */
  onNextChange(waiter: () => void): () => void {
    const once = (): void => waiter()
    this.#waiters.add(once)
    return () => {
      this.#waiters.delete(once)
    }
  }
}

/** The blobs a node is filling now, by digest; the chunk source serves from here and the store. */
export class LiveBlobs {
  readonly #blobs = new Map<Digest, LiveBlob>()
  readonly #listeners = new Set<(digest: Digest) => void>()

  add(blob: LiveBlob): void {
    this.#blobs.set(blob.digest, blob)
    for (const l of this.#listeners) l(blob.digest)
  }

  get(digest: Digest): LiveBlob | undefined {
    return this.#blobs.get(digest)
  }

  /** Ends the live phase (committed or abandoned); waiters wake to see the new state. */
  remove(digest: Digest): void {
    const b = this.#blobs.get(digest)
    this.#blobs.delete(digest)
    b?.notify()
    for (const l of this.#listeners) l(digest)
  }

  /** Called when a blob is added or removed. */
  onChange(listener: (digest: Digest) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  list(): LiveBlob[] {
    return [...this.#blobs.values()]
  }
}
