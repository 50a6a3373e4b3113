import type { Bitfield } from '../../shared/chunks/bitfield.ts'
import { permutation } from '../../shared/swarm/scheduler/random.ts'
import type { OfferReply } from '../../shared/swarm/scheduler/types.ts'

/** A receiver that declined for want of room is offered nothing more for this long (as a `busy` pauses a peer). */
export const OFFER_FULL_BACKOFF_MS = 250
/** A chunk a receiver said is already coming from someone is offered to it again no sooner than this. */
export const OFFER_COMING_RECHECK_MS = 1000
/** Offers in flight to one receiver from one sender, over all blobs: a sender's slots go to distinct receivers. */
export const OFFERS_PER_PEER = 1

/** An offer: chunk `index` of blob `blob` to `peer`. */
export interface Offer {
  readonly blob: number
  readonly peer: string
  readonly index: number
}

export interface OfferPlannerOptions {
  /** Chunks per blob, by the blob's number (the caller's). */
  readonly chunkCounts: readonly number[]
  /** Tie-breaks between equally rare chunks, so senders spread out (seeded in the simulator). */
  readonly random: () => number
  readonly perPeer?: number
  readonly fullBackoffMs?: number
  readonly comingRecheckMs?: number
  /** A `have` update from a receiver paused after `full` ends its pause (a transfer into it ended). */
  readonly wakeOnHave?: boolean
}

/** One receiver's chunks of one blob, as this sender knows them, and what it has on its way to it. */
interface View {
  readonly node: Receiver
  /** Bits as Bitfield bytes (MSB first): what the receiver holds, and chunks offered to it and not ended. */
  readonly have: Uint8Array
  readonly offered: Uint8Array
  /** Per chunk: said to be coming from someone else; not offered again before this time (made on first use). */
  comingUntil: Float64Array | undefined
  /**
   * Wanted nothing else this node held (it said `coming` or `have` and took no other chunk): offered nothing of
   * this blob before this time, unless this node holds more chunks than it did then (`heldThen`).
   */
  restUntil: number
  heldThen: number
  count: number
}

/** One receiver, over all blobs. */
interface Receiver {
  readonly id: string
  outstanding: number
  pausedUntil: number
  /** When it was last offered something: receivers take turns. */
  lastAt: number
}

interface BlobState {
  readonly chunkCount: number
  readonly rowBytes: number
  readonly held: Uint8Array
  heldCount: number
  /** Per chunk: receivers known to hold it plus offers of it in flight. */
  readonly holders: Uint32Array
  /** Per chunk: its place in this sender's random order (ties between equally rare chunks). */
  readonly rank: Uint32Array
  readonly views: Map<string, View>
  readonly list: View[]
  /** This pick's receivers that may be offered something of this blob: #eligible[eligibleFrom, eligibleTo). */
  eligibleFrom: number
  eligibleTo: number
}

/**
 * The sending side of a push: a node with a free upload slot picks whom to give it to, instead of waiting to be
 * asked. Every receiver asking every holder it knows, and being turned away `busy` by most, costs a round trip and a
 * scheduling pass at both ends per refusal (the fleet simulator counted 83–96% of chunk requests answered `busy` at
 * 100 to 10,000 nodes); a sender that knows who lacks what (the `have`s it already tracks) can fill its slot in one
 * offer. The receiver takes an offer within its own limits (DownloadSession.offered: the chunk missing and asked of
 * nobody, room in its ReceiveBudget) or declines; what it takes is proven like any chunk.
 *
 * Policy: the rarest chunk in the sender's view (receivers holding it plus offers of it in flight; ties in a random
 * order per sender) to a receiver that lacks it, the receiver offered longest ago first; one offer in flight per
 * receiver (`perPeer`); a receiver that declined for want of room is left alone for `fullBackoffMs`, one that said
 * it has the chunk is counted as holding it.
 *
 * Pure bookkeeping: no timers, no I/O; time comes in as arguments. It lives in the simulator, not in shared/swarm:
 * measured in the model (bench/sim/README.md, "Scale work, fifth pass") it gave no clear gain, so the product has
 * only the receiving side (DownloadScheduler.accept and setOffers, DownloadSession.offered and offersFrom), which
 * nothing in the agent calls yet.
 */
export class OfferPlanner {
  readonly #blobs: BlobState[]
  readonly #receivers = new Map<string, Receiver>()
  readonly #perPeer: number
  readonly #fullBackoffMs: number
  readonly #comingRecheckMs: number
  readonly #wakeOnHave: boolean
  #retryAt = Number.POSITIVE_INFINITY
  /** Scratch for pick(): receivers that may be offered something, and the held chunks by holder count. */
  readonly #eligible: View[] = []
  readonly #candBlob: Uint32Array
  readonly #candChunk: Uint32Array
  readonly #candH: Uint32Array
  readonly #candOrder: Uint32Array
  #hCount = new Uint32Array(64)
  /** Offers made, and their replies (`swapped`: accepted for another chunk, counted in `accepted` too). */
  readonly counts = { offered: 0, accepted: 0, swapped: 0, have: 0, coming: 0, full: 0 }

  constructor(opts: OfferPlannerOptions) {
    this.#perPeer = opts.perPeer ?? OFFERS_PER_PEER
    this.#fullBackoffMs = opts.fullBackoffMs ?? OFFER_FULL_BACKOFF_MS
    this.#comingRecheckMs = opts.comingRecheckMs ?? OFFER_COMING_RECHECK_MS
    this.#wakeOnHave = opts.wakeOnHave ?? false
    this.#blobs = opts.chunkCounts.map((n) => ({
      chunkCount: n,
      rowBytes: Math.ceil(n / 8),
      held: new Uint8Array(Math.ceil(n / 8)),
      heldCount: 0,
      holders: new Uint32Array(n),
      rank: ranks(permutation(n, opts.random)),
      views: new Map(),
      list: [],
      eligibleFrom: 0,
      eligibleTo: 0,
    }))
    const held = opts.chunkCounts.reduce((a, n) => a + n, 0)
    this.#candBlob = new Uint32Array(held)
    this.#candChunk = new Uint32Array(held)
    this.#candH = new Uint32Array(held)
    this.#candOrder = new Uint32Array(held)
  }

  /** When pick() found only receivers paused after a `full`: the first time one may be offered again. */
  get retryAt(): number {
    return this.#retryAt
  }

  /** This node holds chunk `index` of `blob` (verified): it may offer it. */
  hold(blob: number, index: number): void {
    const b = this.#blobs[blob]
    if (b === undefined || index < 0 || index >= b.chunkCount) return
    const bit = 0x80 >> (index & 7)
    if ((b.held[index >> 3]! & bit) !== 0) return
    b.held[index >> 3]! |= bit
    b.heldCount++
  }

  /** `peer` takes offers and holds `have` of `blob` (its whole bitfield, from a `have` answer). */
  peerHave(blob: number, peer: string, have: Bitfield): void {
    const b = this.#blobs[blob]
    if (b === undefined || have.length !== b.chunkCount) return
    let v = b.views.get(peer)
    if (v === undefined) {
      let node = this.#receivers.get(peer)
      if (node === undefined) {
        node = { id: peer, outstanding: 0, pausedUntil: 0, lastAt: Number.NEGATIVE_INFINITY }
        this.#receivers.set(peer, node)
      }
      v = {
        node,
        have: new Uint8Array(b.rowBytes),
        offered: new Uint8Array(b.rowBytes),
        comingUntil: undefined,
        restUntil: 0,
        heldThen: 0,
        count: 0,
      }
      b.views.set(peer, v)
      b.list.push(v)
    }
    for (const i of have.indexes()) this.#set(b, v, i)
  }

  /** `peer` now holds chunk `index` of `blob` (a `have` update); ignored for a peer not known to take offers. */
  peerHas(blob: number, peer: string, index: number): void {
    const b = this.#blobs[blob]
    const v = b?.views.get(peer)
    if (b === undefined || v === undefined || index < 0 || index >= b.chunkCount) return
    this.#set(b, v, index)
    // A chunk arrived there: a transfer into it ended, so a receiver that was full may have room again.
    if (this.#wakeOnHave) v.node.pausedUntil = 0
  }

  /** Stops offering `peer` anything of `blob` (gone, or no longer followed). */
  forget(blob: number, peer: string): void {
    const b = this.#blobs[blob]
    const v = b?.views.get(peer)
    if (b === undefined || v === undefined) return
    for (let c = 0; c < b.chunkCount; c++) {
      const bit = 0x80 >> (c & 7)
      if ((v.have[c >> 3]! & bit) !== 0) b.holders[c]!--
      // An offer still in flight keeps its holder count until it ends (ended() finds no view and only drops it).
    }
    b.views.delete(peer)
    b.list.splice(b.list.indexOf(v), 1)
  }

  /**
   * What to offer with the next free upload slot, or undefined when no receiver lacks anything this node holds (or
   * all that do are paused or have an offer in flight already). The offer counts as in flight until ended().
   */
  pick(now: number): Offer | undefined {
    // The rarest chunk; among equally rare ones, the receiver offered longest ago, then this sender's order. Held
    // chunks are visited by holder count (a counting sort, blobs and chunks in order within a count), so the scan
    // stops at the first count that has a receiver lacking one: the same choice as comparing every candidate.
    let retryAt = Number.POSITIVE_INFINITY
    let nEligible = 0
    let nHeld = 0
    let maxH = 0
    const eligible = this.#eligible
    for (let bi = 0; bi < this.#blobs.length; bi++) {
      const b = this.#blobs[bi]!
      b.eligibleFrom = nEligible
      if (b.heldCount === 0) {
        b.eligibleTo = nEligible
        continue
      }
      for (const v of b.list) {
        if (v.count >= b.chunkCount) continue
        if (now < v.restUntil && b.heldCount === v.heldThen) continue
        const node = v.node
        if (node.outstanding >= this.#perPeer) continue
        if (now < node.pausedUntil) {
          retryAt = Math.min(retryAt, node.pausedUntil)
          continue
        }
        eligible[nEligible++] = v
      }
      b.eligibleTo = nEligible
      if (b.eligibleTo === b.eligibleFrom) continue
      for (let c = 0; c < b.chunkCount; c++) {
        if ((b.held[c >> 3]! & (0x80 >> (c & 7))) === 0) continue
        const h = b.holders[c]!
        this.#candBlob[nHeld] = bi
        this.#candChunk[nHeld] = c
        this.#candH[nHeld++] = h
        if (h > maxH) maxH = h
      }
    }
    eligible.length = nEligible
    let best: View | undefined
    let bestBlob = -1
    let bestChunk = -1
    let bestRank = 0
    if (nHeld > 0) {
      if (this.#hCount.length < maxH + 2) this.#hCount = new Uint32Array(2 * (maxH + 2))
      const count = this.#hCount
      count.fill(0, 0, maxH + 2)
      for (let j = 0; j < nHeld; j++) count[this.#candH[j]! + 1]!++
      for (let k = 1; k <= maxH + 1; k++) count[k]! += count[k - 1]!
      const order = this.#candOrder
      for (let j = 0; j < nHeld; j++) order[count[this.#candH[j]!]!++] = j
      let level = -1
      for (let o = 0; o < nHeld; o++) {
        const j = order[o]!
        const h = this.#candH[j]!
        if (best !== undefined && h !== level) break
        level = h
        const bi = this.#candBlob[j]!
        const c = this.#candChunk[j]!
        const b = this.#blobs[bi]!
        const byte = c >> 3
        const bit = 0x80 >> (c & 7)
        const r = b.rank[c]!
        for (let e = b.eligibleFrom; e < b.eligibleTo; e++) {
          const v = eligible[e]!
          if (((v.have[byte]! | v.offered[byte]!) & bit) !== 0) continue
          if (v.comingUntil !== undefined && now < v.comingUntil[c]!) continue
          if (best !== undefined) {
            if (v.node.lastAt !== best.node.lastAt) {
              if (v.node.lastAt > best.node.lastAt) continue
            } else if (r > bestRank || (r === bestRank && bi >= bestBlob)) continue
          }
          best = v
          bestBlob = bi
          bestChunk = c
          bestRank = r
        }
      }
    }
    this.#retryAt = best === undefined ? retryAt : Number.POSITIVE_INFINITY
    if (best === undefined) return undefined
    const b = this.#blobs[bestBlob]!
    best.offered[bestChunk >> 3]! |= 0x80 >> (bestChunk & 7)
    b.holders[bestChunk]!++
    best.node.outstanding++
    best.node.lastAt = now
    this.counts.offered++
    return { blob: bestBlob, peer: best.node.id, index: bestChunk }
  }

  /**
   * The receiver's reply to `offer`. Accepted: the offer in flight until ended(), for the chunk the receiver took
   * (another than offered when it had that one or has it coming: counted so), undefined when this node does not hold
   * that one (the slot then goes unused). Declined: undefined.
   */
  answered(offer: Offer, reply: OfferReply, now: number): Offer | undefined {
    const answer = reply.answer
    if (answer === 'accept') {
      if (reply.index === offer.index) {
        this.counts.accepted++
        return offer
      }
      // The offered chunk is held there or on its way: not offered to it again for a while.
      this.ended(offer, false)
      const b = this.#blobs[offer.blob]!
      const c = reply.index
      const v = b.views.get(offer.peer)
      if (v !== undefined)
        (v.comingUntil ??= new Float64Array(b!.chunkCount))[offer.index] = now + this.#comingRecheckMs
      const node = this.#receivers.get(offer.peer)
      if (c < 0 || c >= b.chunkCount || (b.held[c >> 3]! & (0x80 >> (c & 7))) === 0 || node === undefined) {
        return undefined
      }
      this.counts.accepted++
      this.counts.swapped++
      node.outstanding++
      b.holders[c]!++
      if (v !== undefined) v.offered[c >> 3]! |= 0x80 >> (c & 7)
      return { blob: offer.blob, peer: offer.peer, index: c }
    }
    this.counts[answer]++
    this.ended(offer, answer === 'have')
    const b = this.#blobs[offer.blob]
    const v = b?.views.get(offer.peer)
    if (answer === 'coming' && v !== undefined)
      (v.comingUntil ??= new Float64Array(b!.chunkCount))[offer.index] = now + this.#comingRecheckMs
    if ((answer === 'coming' || answer === 'have') && v !== undefined) {
      // It took no other chunk of those this node holds: nothing to offer it until this node holds more.
      v.restUntil = now + this.#comingRecheckMs
      v.heldThen = b!.heldCount
    }
    if (answer === 'full') {
      const node = this.#receivers.get(offer.peer)
      if (node !== undefined) node.pausedUntil = Math.max(node.pausedUntil, now + this.#fullBackoffMs)
    }
    return undefined
  }

  /** `offer` is over: `held` when the receiver now has the chunk (sent, or it had it), false when it came to nothing. */
  ended(offer: Offer, held: boolean): void {
    const b = this.#blobs[offer.blob]
    const node = this.#receivers.get(offer.peer)
    if (b === undefined || node === undefined) return
    if (node.outstanding > 0) node.outstanding--
    b.holders[offer.index]!--
    const v = b.views.get(offer.peer)
    if (v === undefined) return
    v.offered[offer.index >> 3]! &= ~(0x80 >> (offer.index & 7))
    if (held) this.#set(b, v, offer.index)
  }

  #set(b: BlobState, v: View, index: number): void {
    const bit = 0x80 >> (index & 7)
    if ((v.have[index >> 3]! & bit) !== 0) return
    v.have[index >> 3]! |= bit
    v.count++
    b.holders[index]!++
  }
}

/** rank[c] = c's place in `order`. */
function ranks(order: Uint32Array): Uint32Array {
  const rank = new Uint32Array(order.length)
  for (let i = 0; i < order.length; i++) rank[order[i]!] = i
  return rank
}
