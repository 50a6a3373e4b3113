import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { type ChunkAttestation, signChunkAttestation } from '../../../../shared/chunks/attestation.ts'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { chunkCount, chunkRange } from '../../../../shared/chunks/chunk-map.ts'
import { chunkDigestOf } from '../../../../shared/chunks/compute.ts'
import { type SignedChunkMap, signChunkMap } from '../../../../shared/chunks/signed-map.ts'
import { createLogger, type Logger } from '../../../../shared/log/index.ts'
import { type Digest, digestOf } from '../../../../shared/oci/digest.ts'
import { createP2PNode, type P2PNode } from '../../../../shared/p2p/index.ts'
import type { ChunkSource, RequestContext, SourceHave } from '../../../../shared/swarm/protocol/index.ts'

export const KIB = 1024
export const MIB = 1024 * KIB

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed | 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

export interface TestBlob {
  readonly digest: Digest
  readonly bytes: Uint8Array
  readonly chunkSize: number
  readonly signed: SignedChunkMap
  readonly attestations: readonly ChunkAttestation[]
  chunk(index: number): Uint8Array
}

export async function makeBlob(size: number, chunkSize: number, seed: number, key: PrivateKey): Promise<TestBlob> {
  const bytes = bytesOf(size, seed)
  const digest = digestOf(bytes)
  const chunk = (i: number): Uint8Array => {
    const { start, end } = chunkRange({ size, chunkSize }, i)
    return bytes.subarray(start, end)
  }
  const chunks = Array.from({ length: chunkCount(size, chunkSize) }, (_, i) => chunkDigestOf(chunk(i)))
  const signed = await signChunkMap({ digest, size, chunkSize, chunks }, key)
  const attestations = await Promise.all(
    chunks.map((c, index) => signChunkAttestation({ digest, size, chunkSize, index, chunk: c }, key)),
  )
  return { digest, bytes, chunkSize, signed, attestations, chunk }
}

export function seederKey(): Promise<PrivateKey> {
  return generateKeyPair('Ed25519')
}

interface Entry {
  readonly blob: TestBlob
  readonly held: Bitfield
  complete: boolean
  withMap: boolean
  withAttestations: boolean
}

/** An in-memory ChunkSource with hooks to observe and stall it. */
export class MemorySource implements ChunkSource {
  readonly #entries = new Map<Digest, Entry>()
  readonly #maps = new Map<Digest, SignedChunkMap>()
  readonly #waiters = new Set<() => void>()
  readonly #waiting: (() => void)[] = []
  /** When set, readChunk waits for it (to hold an upload slot, or to outlast a timeout). */
  readChunkGate: Promise<void> | undefined
  mapGate: Promise<void> | undefined
  fetchImpl: ChunkSource['fetch']
  readonly contexts: RequestContext[] = []

  add(blob: TestBlob, opts: { held?: 'all' | number[]; map?: boolean; attestations?: boolean } = {}): void {
    const n = chunkCount(blob.bytes.byteLength, blob.chunkSize)
    const held = opts.held === undefined || opts.held === 'all' ? Bitfield.full(n) : new Bitfield(n)
    if (Array.isArray(opts.held)) for (const i of opts.held) held.set(i)
    this.#entries.set(blob.digest, {
      blob,
      held,
      complete: held.complete && (opts.held === undefined || opts.held === 'all'),
      withMap: opts.map ?? true,
      withAttestations: opts.attestations ?? false,
    })
  }

  /** Serves a map only (no bytes behind it). */
  addMap(signed: SignedChunkMap): void {
    this.#maps.set(signed.map.digest, signed)
  }

  /** Marks one more chunk held and wakes long polls. */
  addChunk(digest: Digest, index: number): void {
    const e = this.#entries.get(digest)!
    e.held.set(index)
    for (const w of [...this.#waiters]) w()
  }

  /** waitHave calls still parked. */
  get waiters(): number {
    return this.#waiters.size
  }

  /** Resolves when a waitHave call is parked. */
  nextWait(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  async map(digest: Digest, ctx?: RequestContext): Promise<SignedChunkMap | undefined> {
    if (ctx !== undefined) this.contexts.push(ctx)
    await this.mapGate
    const e = this.#entries.get(digest)
    return e?.withMap === true ? e.blob.signed : this.#maps.get(digest)
  }

  have(digest: Digest, ctx?: RequestContext): SourceHave | undefined {
    if (ctx !== undefined) this.contexts.push(ctx)
    const e = this.#entries.get(digest)
    if (e === undefined) return undefined
    return {
      size: e.blob.bytes.byteLength,
      chunkSize: e.blob.chunkSize,
      bitfield: e.held.clone(),
      complete: e.complete,
    }
  }

  waitHave(digest: Digest, knownCount: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (signal.aborted || (this.#entries.get(digest)?.held.count ?? 0) !== knownCount) done()
      }
      const done = (): void => {
        this.#waiters.delete(check)
        signal.removeEventListener('abort', done)
        resolve()
      }
      this.#waiters.add(check)
      signal.addEventListener('abort', done, { once: true })
      for (const w of this.#waiting.splice(0)) w()
      check()
    })
  }

  async readChunk(
    digest: Digest,
    index: number,
    _ctx?: RequestContext,
    into?: Uint8Array,
  ): Promise<{ bytes: Uint8Array; attestation?: ChunkAttestation } | undefined> {
    await this.readChunkGate
    const e = this.#entries.get(digest)
    if (e === undefined || !e.held.has(index)) return undefined
    // Into the sender's buffer when it gives one, as the store does: the bulk path's buffer reuse runs in its tests.
    const bytes = into === undefined ? e.blob.chunk(index) : (into.set(e.blob.chunk(index)), into)
    return e.withAttestations ? { bytes, attestation: e.blob.attestations[index]! } : { bytes }
  }

  get fetch(): ChunkSource['fetch'] {
    return this.fetchImpl
  }
}

/** A promise with its resolve function, to hold a source call until the test lets go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  const { promise, resolve } = Promise.withResolvers<void>()
  return { promise, open: () => resolve() }
}

export interface LogLine {
  readonly level: number
  readonly msg: string
  readonly err?: { readonly type?: string; readonly message?: string }
}

/** A debug-level pino logger whose lines land in `lines`. */
export function captureLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = []
  const destination = {
    write(s: string): void {
      for (const l of s.split('\n')) if (l !== '') lines.push(JSON.parse(l) as LogLine)
    },
  }
  return { log: createLogger({ level: 'debug', name: 'chunk-server', destination }), lines }
}

export class Nodes {
  readonly #cleanups: (() => Promise<void>)[] = []

  async start(): Promise<P2PNode> {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-chunks-'))
    this.#cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const node = await createP2PNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'] })
    this.#cleanups.push(async () => {
      await node.stop()
    })
    return node
  }

  defer(fn: () => Promise<void>): void {
    this.#cleanups.push(fn)
  }

  async stopAll(): Promise<void> {
    for (const c of this.#cleanups.splice(0).reverse()) await c()
  }
}

export function addrOf(node: P2PNode): ReturnType<P2PNode['getMultiaddrs']>[number] {
  const a = node.getMultiaddrs()[0]
  if (a === undefined) throw new Error('node has no listen address')
  return a
}
