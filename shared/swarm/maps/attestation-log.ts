/**
 * A blob's attestations on disk: an append-only log of records `u16 length (big-endian) | encoded attestation`.
 * Appending one small record per verified chunk is cheaper than rewriting a file each time; a crash can leave a
 * torn last record, which the reader stops at and the writer truncates before it appends again.
 */
import {
  type ChunkAttestation,
  decodeChunkAttestation,
  encodeChunkAttestation,
  MAX_ENCODED_CHUNK_ATTESTATION_BYTES,
} from '../../chunks/attestation.ts'
import type { Digest } from '../../oci/digest.ts'

const LENGTH_BYTES = 2

export function encodeRecord(a: ChunkAttestation): Uint8Array {
  const body = encodeChunkAttestation(a)
  const out = new Uint8Array(LENGTH_BYTES + body.byteLength)
  new DataView(out.buffer).setUint16(0, body.byteLength)
  out.set(body, LENGTH_BYTES)
  return out
}

export interface ParsedLog {
  /** One per index (the last record for it wins), all of the last record's geometry, in index order. */
  readonly attestations: ChunkAttestation[]
  /** Length of the prefix made of whole, valid records; anything after it is torn or corrupt. */
  readonly validBytes: number
  /** Records in the valid prefix (more than attestations.length when some were superseded). */
  readonly records: number
}

/** Parses a log; records about another blob than `digest` count as corruption (the file name is the key). */
export function parseLog(bytes: Uint8Array, digest: Digest): ParsedLog {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const all: ChunkAttestation[] = []
  let offset = 0
  while (offset + LENGTH_BYTES <= bytes.byteLength) {
    const length = view.getUint16(offset)
    const end = offset + LENGTH_BYTES + length
    if (length === 0 || length > MAX_ENCODED_CHUNK_ATTESTATION_BYTES || end > bytes.byteLength) break
    let a: ChunkAttestation
    try {
      a = decodeChunkAttestation(bytes.subarray(offset + LENGTH_BYTES, end))
    } catch {
      break
    }
    if (a.digest !== digest) break
    all.push(a)
    offset = end
  }
  const last = all.at(-1)
  const byIndex = new Map<number, ChunkAttestation>()
  for (const a of all) {
    if (last !== undefined && a.size === last.size && a.chunkSize === last.chunkSize) byIndex.set(a.index, a)
  }
  return {
    attestations: [...byIndex.values()].sort((x, y) => x.index - y.index),
    validBytes: offset,
    records: all.length,
  }
}
