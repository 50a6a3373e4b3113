import type { EventQueue } from './queue.ts'

/**
 * The DHT as the agents use it: one provider record per (blob, agent), published after the agent's first
 * verified chunk and stored on the `replication` nodes closest to the blob's key; a lookup answers, after a
 * modelled latency, with up to `results` providers drawn at random from those published so far. Routing-table
 * upkeep and the walk's own messages are not modelled: the counts are records and lookups.
 */
export class Dht {
  readonly #q: EventQueue
  readonly #random: () => number
  readonly #providers: string[][]
  readonly #closest: number[][]
  readonly #opts: { readonly provideLatencyMs: number; readonly lookupLatencyMs: number; readonly results: number }
  readonly recordsPerNode: Float64Array
  readonly lookupsPerNode: Float64Array
  provides = 0
  lookups = 0

  constructor(
    q: EventQueue,
    random: () => number,
    opts: {
      readonly nodes: number
      readonly keys: number
      readonly replication: number
      readonly provideLatencyMs: number
      readonly lookupLatencyMs: number
      readonly results: number
    },
  ) {
    this.#q = q
    this.#random = random
    this.#opts = opts
    this.recordsPerNode = new Float64Array(opts.nodes)
    this.lookupsPerNode = new Float64Array(opts.nodes)
    this.#providers = Array.from({ length: opts.keys }, () => [])
    // The nodes closest to a key are, for a random key, a random set of min(K, N) nodes.
    this.#closest = Array.from({ length: opts.keys }, () =>
      sample(opts.nodes, Math.min(opts.replication, opts.nodes), random),
    )
  }

  providers(key: number): number {
    return this.#providers[key]?.length ?? 0
  }

  provide(node: number, id: string, key: number): void {
    this.provides++
    this.#q.after(this.#opts.provideLatencyMs, () => {
      this.#providers[key]!.push(id)
      for (const n of this.#closest[key]!) this.recordsPerNode[n]!++
    })
  }

  lookup(node: number, key: number, found: (ids: readonly string[]) => void): void {
    this.lookups++
    this.lookupsPerNode[node]!++
    this.#q.after(this.#opts.lookupLatencyMs, () => {
      const all = this.#providers[key]!
      if (all.length <= this.#opts.results) {
        found([...all])
        return
      }
      found(sample(all.length, this.#opts.results, this.#random).map((i) => all[i]!))
    })
  }
}

/** `k` distinct integers in [0, n), drawn with `random`. */
export function sample(n: number, k: number, random: () => number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i)
  const picked = new Set<number>()
  while (picked.size < k) picked.add(Math.floor(random() * n))
  return [...picked]
}
