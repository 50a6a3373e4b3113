import type { ChunkAttestation } from '../../chunks/index.ts'
import type { ChunkVerifier } from './types.ts'

/** The chunks of a download already on disk when it resumes (after a restart), as proveResumed sees them. */
export interface ResumedChunks {
  /** Indexes whose bytes are on disk. */
  written(): Iterable<number>
  read(index: number, signal: AbortSignal): Promise<Uint8Array>
  /** The attestation kept for a chunk (a cold blob's proof), if any. */
  attestation(index: number): ChunkAttestation | undefined
  /** The chunk is proven: it counts as held (the session never asks for it, peers may fetch it). */
  proven(index: number, attestation: ChunkAttestation | undefined): void
}

/**
 * Bytes on disk are proven again before they count, by the same verifier a session checks answers with: against
 * the trusted map's hash, else an attestation the verifier still trusts. A chunk that proves nothing stays unproven
 * and is fetched again (writing a chunk already written is a no-op). Resolves with the count proven.
 */
export async function proveResumed(
  chunks: ResumedChunks,
  verifier: ChunkVerifier,
  signal: AbortSignal,
): Promise<number> {
  let proven = 0
  for (const index of [...chunks.written()]) {
    signal.throwIfAborted()
    const attestation = chunks.attestation(index)
    let chunk = verifier.fromMap(index)
    let kept: ChunkAttestation | undefined
    if (chunk === undefined && attestation !== undefined && (await verifier.attested(attestation, index, signal))) {
      chunk = attestation.chunk
      kept = attestation
    }
    if (chunk === undefined) continue
    const bytes = await chunks.read(index, signal)
    try {
      verifier.check(index, chunk, bytes)
    } catch {
      continue
    }
    chunks.proven(index, kept ?? attestation)
    proven++
  }
  return proven
}
