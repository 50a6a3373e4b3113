import type { AbortOptions, Peer, PeerData, PeerId, PeerInfo, PeerStore } from '@libp2p/interface'

/**
 * How long a peer record read from the peer store is served from memory. Every write goes through the same
 * object and drops the record at once, so this only bounds what libp2p's time-based rules see late: an address
 * older than the store's max address age (1 h) and a peer past its max age (6 h) outlive them by at most this.
 */
export const PEER_STORE_CACHE_MS = 10_000

/** Records kept at most; past it the oldest are dropped (a bound, the working set of a rollout is far smaller). */
export const PEER_STORE_CACHE_MAX = 4096

/** How often each kind of peer store call was answered from memory or went to the store (tests and profiles). */
export interface PeerStoreCacheStats {
  /** `get`/`getInfo`/`has` answered from memory. */
  readHits: number
  /** `get`/`getInfo`/`has` that loaded and decoded the record. */
  readMisses: number
  /** `merge` of protocols and addresses the record already lists: no lock, no load, no write. */
  mergesSkipped: number
  /** Writes passed to the store (`merge`, `patch`, `save`, `delete`, `consumePeerRecord`). */
  writes: number
}

interface Entry {
  readonly peer: Peer
  readonly at: number
}

type Methods = Pick<PeerStore, 'get' | 'getInfo' | 'has' | 'merge' | 'patch' | 'save' | 'delete' | 'consumePeerRecord'>

/**
 * Puts a read cache in front of libp2p's peer store, in place (libp2p takes no peer store of our own, and its
 * components share this one object).
 *
 * libp2p's store locks, loads, protobuf-decodes and, for a write, encodes and saves the whole record at each call,
 * and its callers call it at message rate: every stream opened or accepted merges the stream's protocol into the
 * remote peer's record (libp2p's connection.js, a write even when the protocol is already there), and kad-dht loads
 * the ~20 closest peers' records for every GET_PROVIDERS and FIND_NODE it answers. In a 16-node fleet run that was
 * ~12 % of an agent's CPU in the store plus 3.5 % in `getClosestPeersOffline` (bench/RESULTS.md).
 *
 * Reads are served from the last record read or written for the peer; every write through the store drops it
 * first (and a read that raced a write is not kept), so what a reader sees is what the store holds, except for
 * the time-based expiry above. A `merge` of protocols and addresses the record already lists (a stream's protocol,
 * a provider's addresses from every lookup) is answered with that record: the store's write would only have
 * refreshed the record's update time, which the next merge after the cache time still does.
 */
export function cachePeerStore(
  store: PeerStore,
  opts: { ttlMs?: number; max?: number; now?: () => number } = {},
): PeerStoreCacheStats {
  const ttlMs = opts.ttlMs ?? PEER_STORE_CACHE_MS
  const max = opts.max ?? PEER_STORE_CACHE_MAX
  const now = opts.now ?? Date.now
  const stats: PeerStoreCacheStats = { readHits: 0, readMisses: 0, mergesSkipped: 0, writes: 0 }
  const entries = new Map<string, Entry>()
  /** Bumped by every write to a peer (`epoch` by one that may touch any), so a read begun before it is not kept. */
  const generation = new Map<string, number>()
  let epoch = 0
  const stamp = (key: string): string => `${epoch}:${generation.get(key) ?? 0}`
  const forgetAll = (): void => {
    entries.clear()
    generation.clear()
    epoch++
  }
  const orig: Methods = {
    get: store.get.bind(store),
    getInfo: store.getInfo.bind(store),
    has: store.has.bind(store),
    merge: store.merge.bind(store),
    patch: store.patch.bind(store),
    save: store.save.bind(store),
    delete: store.delete.bind(store),
    consumePeerRecord: store.consumePeerRecord.bind(store),
  }

  const fresh = (key: string): Peer | undefined => {
    const e = entries.get(key)
    if (e === undefined) return undefined
    if (now() - e.at < ttlMs) return e.peer
    entries.delete(key)
    return undefined
  }
  const keep = (key: string, peer: Peer): void => {
    entries.delete(key)
    if (entries.size >= max) {
      const oldest = entries.keys().next()
      if (oldest.done !== true) entries.delete(oldest.value)
    }
    entries.set(key, { peer, at: now() })
  }
  const bump = (key: string): string => {
    if (generation.size >= 4 * max) forgetAll() // a bound: reads and writes in flight then are just not kept
    entries.delete(key)
    generation.set(key, (generation.get(key) ?? 0) + 1)
    return stamp(key)
  }
  const write = async <T>(id: PeerId, run: () => Promise<T>, result: (v: T) => Peer | undefined): Promise<T> => {
    stats.writes++
    const key = id.toString()
    const g = bump(key)
    try {
      const v = await run()
      const peer = result(v)
      const latest = stamp(key) === g
      // Again once written: a read that reached the store ahead of this write may have kept the record before it.
      bump(key)
      if (peer !== undefined && latest) keep(key, peer)
      return v
    } catch (err) {
      entries.delete(key)
      throw err
    }
  }
  const get = async (id: PeerId, options?: AbortOptions): Promise<Peer> => {
    const key = id.toString()
    const hit = fresh(key)
    if (hit !== undefined) {
      options?.signal?.throwIfAborted()
      stats.readHits++
      return hit
    }
    stats.readMisses++
    const g = stamp(key)
    const peer = await orig.get(id, options)
    if (stamp(key) === g) keep(key, peer)
    return peer
  }

  const wrapped: Methods = {
    get,
    async getInfo(id: PeerId, options?: AbortOptions): Promise<PeerInfo> {
      const peer = await get(id, options)
      return { id: peer.id, multiaddrs: peer.addresses.map((a) => a.multiaddr) }
    },
    async has(id: PeerId, options?: AbortOptions): Promise<boolean> {
      try {
        await get(id, options)
        return true
      } catch (err) {
        if ((err as Error).name === 'NotFoundError') return false
        throw err
      }
    },
    async merge(id: PeerId, data: PeerData, options?: AbortOptions): Promise<Peer> {
      const known = fresh(id.toString())
      if (known !== undefined && adds(id, known, data) === false) {
        options?.signal?.throwIfAborted()
        stats.mergesSkipped++
        return known
      }
      return write(
        id,
        () => orig.merge(id, data, options),
        (p) => p,
      )
    },
    patch: (id, data, options) =>
      write(
        id,
        () => orig.patch(id, data, options),
        (p) => p,
      ),
    save: (id, data, options) =>
      write(
        id,
        () => orig.save(id, data, options),
        (p) => p,
      ),
    delete: (id, options) =>
      write(
        id,
        () => orig.delete(id, options),
        () => undefined,
      ),
    async consumePeerRecord(...args: Parameters<PeerStore['consumePeerRecord']>): Promise<boolean> {
      // The record's signer is only known once the store has opened the envelope: drop everything it may touch.
      stats.writes++
      forgetAll()
      try {
        return await (orig.consumePeerRecord as (...a: unknown[]) => Promise<boolean>)(...args)
      } finally {
        forgetAll()
      }
    },
  }
  Object.assign(store, wrapped)
  return stats
}

/**
 * Whether merging `data` into `known` could change the stored record: false only for protocols and addresses it
 * already lists. libp2p's merge keeps an address's first `observed` time, so merging a listed address again
 * changes nothing but the record's update time; an address `known` does not list (expired ones are not listed)
 * or any other field goes to the store.
 */
function adds(id: PeerId, known: Peer, data: PeerData): boolean {
  for (const k of Object.keys(data)) {
    if (k !== 'protocols' && k !== 'multiaddrs') return true
  }
  if (data.protocols !== undefined && !data.protocols.every((p) => known.protocols.includes(p))) return true
  if (data.multiaddrs !== undefined && data.multiaddrs.length > 0) {
    const listed = new Set(known.addresses.map((a) => a.multiaddr.toString()))
    const self = `/p2p/${id.toString()}`
    for (const ma of data.multiaddrs) {
      const s = ma.toString()
      if (!listed.has(s.endsWith(self) ? s.slice(0, -self.length) : s)) return true
    }
  }
  return false
}
