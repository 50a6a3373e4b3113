import { mbitToBps } from '../fleet/bound.ts'
import type { LinkRates, ScenarioName } from '../fleet/config.ts'
import type { HostRole } from '../fleet/netns.ts'
import { type Flow, FlowNet, Link } from './flows.ts'
import {
  AGENT_WAN_UPLOADS,
  SEEDER_UPLOADS_PER_SITE,
  SiteUploadSlots,
  UploadSlots,
} from '../../shared/swarm/serve/index.ts'
import { EventQueue } from './queue.ts'

/** Everything one simulated rollout is built from. Rates in megabits per second, as the fleet's. */
export interface SimParams {
  readonly nodes: number
  readonly links: LinkRates
  /** Sizes of the image's blobs (config and layers), in the order a client asks for them. */
  readonly blobBytes: readonly number[]
  /** Manifest bytes every node fetches from the origin itself. */
  readonly manifestBytes: number
  readonly chunkBytes: number
  readonly rttMs: number
  /** Payload share of a shaped link's rate (TCP/IP and Ethernet headers take the rest). */
  readonly wireEfficiency: number
  /** Chunk uploads an agent serves at once; more are answered `busy` (agent: 3). */
  readonly uploadSlots: number
  /** The same for the seeder (seeder: 8), for agents in no site. */
  readonly seederUploadSlots: number
  /** The seeder's upload slots per edge site (SEEDER_UPLOADS_PER_SITE); undefined = its default. */
  readonly seederUploadsPerSite?: number
  /** The seeder answers a site's other members `busy` for a chunk on its way into the site; undefined = true. */
  readonly seederOncePerSite?: boolean
  /** An agent's upload slots for peers outside its site (AGENT_WAN_UPLOADS); undefined = its default. */
  readonly wanUploadSlots?: number
  /** How long a chunk request refused an upload slot waits for one before `busy` (SLOT_WAIT_MS); 0 = no wait. */
  readonly slotWaitMs: number
  /** Bytes of a chunk a sender can queue (socket and muxer buffers) before its upload slot is free again. */
  readonly sendBufferBytes: number
  readonly lookupPeriodMs: number
  readonly lookupLatencyMs: number
  /** Providers one DHT lookup returns (Kademlia's K). */
  readonly lookupResults: number
  /** Nodes that store each provider record (Kademlia's K). */
  readonly dhtReplication: number
  readonly provideLatencyMs: number
  /** The scheduler's pipeline per peer (maxInflightPerPeer and maxInflightPerFastPeer); undefined = its defaults. */
  readonly inflightPerPeer?: number
  /** The scheduler's inflightTotalMs (0: no rate cap on a download's requests); undefined = its default. */
  readonly inflightTotalMs?: number
  /** The scheduler's pause before asking a peer that answered `busy` again; undefined = its default. */
  readonly busyBackoffMs?: number
  /** The scheduler's longest pause after `busy` answers in a row; undefined = its default. */
  readonly maxBusyBackoffMs?: number
  /**
   * Chunk requests an agent keeps in flight over all its blobs (ReceiveBudget); 0 = no node-wide budget (the tree
   * before it); undefined = the agent's default.
   */
  readonly nodeInflight?: number
  /**
   * Share of the agents that offer their chunks (OfferPlanner, bench/sim/offer-planner.ts): 0 = none (the pull
   * path alone, the product today), 1 = all; the others pull as before, and both kinds serve each other's requests.
   */
  readonly offerShare?: number
  /** Offers an offering agent keeps out beyond its free upload slots (asked, or taken and waiting for a slot). */
  readonly offerAhead?: number
  /** Pause at a sender of a receiver that answered `full`, ended early by a `have` update from it; undefined = 250 ms, no early end. */
  readonly offerFullMs?: number
  /** Copies of a chunk the seeder may hand out while its SendMeter has room (1 = once); undefined = its default. */
  readonly seedCopies?: number
  /** Peers an agent tracks per blob besides the seeder; 0 = no cap. */
  readonly maxPeers: number
  /** Peer hints in one seeder `have` answer (MAX_HAVE_PEERS). */
  readonly hints: number
  readonly stallTimeoutMs: number
  /** A chunk request is failed this long after it was sent, its bytes thrown away (the client's request timeout). */
  readonly chunkDeadlineMs: number
  /** Bytes each node's own requests take from the origin besides the manifest (HEADs, tokens, headers). */
  readonly originControlBytesPerNode: number
  /**
   * Shoal agents: the origin's answer to the HEAD that resolves the tag (its status line and headers, no body), and
   * as much again for the headers of a manifest GET when no seeder or node holds the body (bench/manifests).
   * Absent: 0.
   */
  readonly originResolveBytesPerNode?: number
  readonly seed: number
  /** Simulated time after which a run is cut off and unfinished nodes count as failed. */
  readonly limitMs: number
  /** Edge sites: the nodes in `count` sites of `nodes / count`, each behind its own WAN link to the core. */
  readonly sites?: SimSites
}

export interface SimSites {
  readonly count: number
  /** Each site's WAN link, both directions, in megabits per second. */
  readonly wanMbit: number
  /** Agents and seeder know their sites (`--site`); false: the same topology with a flat swarm. */
  readonly aware: boolean
  /** The WAN links are down over [from, to) of simulated time (a cut mid-rollout); none if undefined. */
  readonly cut?: { readonly site: number; readonly fromMs: number; readonly toMs: number }
}

export type SimScenario = Extract<ScenarioName, 'direct' | 'shoal-cold' | 'shoal-preheated'>

/** TCP payload per packet with timestamps on a 1500-byte MTU, and the headers the fleet's counters subtract. */
export const MSS_BYTES = 1448
export const HEADER_BYTES_PER_PACKET = 66

export class Host {
  readonly id: string
  readonly role: HostRole
  readonly up: Link
  readonly down: Link
  /** The chunk server's upload slots (Shoal's UploadSlots on the virtual clock); set for seeder and nodes. */
  slots: UploadSlots | undefined
  /** Payload bytes sent outside modelled flows (origin control traffic). */
  extraTx = 0
  /** When the uplink is done with the small responses queued on it (World.sendSmall). */
  smallFreeAt = 0
  /** Edge sites: the site's index for a node in one, undefined for the core (origin, seeder). */
  site: number | undefined

  constructor(id: string, role: HostRole, up: Link, down: Link) {
    this.id = id
    this.role = role
    this.up = up
    this.down = down
  }
}

export interface Blob {
  readonly index: number
  readonly bytes: number
  readonly chunkCount: number
  readonly chunkBytes: (i: number) => number
}

export function makeBlob(index: number, bytes: number, chunkBytes: number): Blob {
  const chunkCount = Math.max(1, Math.ceil(bytes / chunkBytes))
  return {
    index,
    bytes,
    chunkCount,
    chunkBytes: (i) => Math.min(chunkBytes, bytes - i * chunkBytes),
  }
}

/** DHT bookkeeping of one run: records stored and lookups made, per node. */
export interface DhtStats {
  readonly provides: number
  readonly lookups: number
  /** Provider records held by each node (agents only; the seeder is not a provider). */
  readonly recordsPerNode: Float64Array
  readonly lookupsPerNode: Float64Array
  /** Providers of the most-provided blob at the end: what one GET_PROVIDERS answer would list. */
  readonly maxProvidersPerKey: number
}

/** The shared machinery of one run. */
export class World {
  readonly p: SimParams
  readonly q = new EventQueue()
  readonly net: FlowNet
  readonly blobs: readonly Blob[]
  readonly origin: Host
  readonly seeder: Host
  readonly nodes: readonly Host[]
  /** Edge sites: each site's WAN link, into the site (`down`) and out of it (`up`). */
  readonly wan: readonly { readonly up: Link; readonly down: Link }[]
  readonly latMs: number
  /** Deterministic randomness for the model's own choices (the schedulers get their own streams). */
  readonly random: () => number

  constructor(p: SimParams, random: () => number) {
    this.p = p
    this.net = new FlowNet(this.q)
    this.random = random
    this.latMs = p.rttMs / 2
    const cap = (mbit: number) => (mbitToBps(mbit) * p.wireEfficiency) / 1000
    const l = p.links
    this.origin = new Host(
      'origin',
      'origin',
      new Link('origin.up', cap(l.originUp)),
      new Link('origin.down', Infinity),
    )
    this.seeder = new Host(
      'seeder',
      'seeder',
      new Link('seeder.up', cap(l.seederUp)),
      new Link('seeder.down', cap(l.seederDown)),
    )
    const nodes: Host[] = []
    for (let i = 1; i <= p.nodes; i++) {
      nodes.push(
        new Host(
          `node-${i}`,
          'node',
          new Link(`node-${i}.up`, cap(l.nodeUp)),
          new Link(`node-${i}.down`, cap(l.nodeDown)),
        ),
      )
    }
    this.nodes = nodes
    const sites = p.sites
    const wan: { up: Link; down: Link }[] = []
    if (sites !== undefined) {
      if (!(sites.count > 0) || p.nodes % sites.count !== 0) {
        throw new RangeError(`${p.nodes} nodes do not split into ${sites.count} sites`)
      }
      const per = p.nodes / sites.count
      for (let k = 0; k < sites.count; k++) {
        wan.push({
          up: new Link(`site-${k}.wan.up`, cap(sites.wanMbit)),
          down: new Link(`site-${k}.wan.down`, cap(sites.wanMbit)),
        })
      }
      nodes.forEach((n, i) => (n.site = Math.floor(i / per)))
    }
    this.wan = wan
    const now = () => this.q.now
    const queue = (slots: number) => (p.slotWaitMs > 0 ? slots : 0)
    // The seeder knows an agent's site from its `have` requests: with sites known, each site draws on its own slots.
    const siteOf = new Map<string, string>()
    if (sites?.aware === true) for (const n of nodes) siteOf.set(n.id, `site-${n.site}`)
    this.seeder.slots = new SiteUploadSlots({
      max: p.seederUploadSlots,
      poolOf: (peer) => siteOf.get(peer),
      perPool: p.seederUploadsPerSite ?? SEEDER_UPLOADS_PER_SITE,
      // Each chunk once into each site, as seederUploadSlots.
      oncePerPool: p.seederOncePerSite ?? true,
      now,
      queue,
    })
    // An agent in a site serves peers outside it from a pool of its own (AGENT_WAN_UPLOADS).
    for (const n of nodes) {
      n.slots =
        sites?.aware === true
          ? new SiteUploadSlots({
              max: p.uploadSlots,
              poolOf: (peer) => (siteOf.get(peer) === `site-${n.site}` ? undefined : 'wan'),
              perPool: p.wanUploadSlots ?? AGENT_WAN_UPLOADS,
              now,
              queue,
            })
          : new UploadSlots(p.uploadSlots, { now, queue: queue(p.uploadSlots) })
    }
    this.blobs = p.blobBytes.map((b, i) => makeBlob(i, b, p.chunkBytes))
  }

  /**
   * A small response (a manifest): sent first-come first-served at the full rate of the narrower end, not as a
   * fluid flow. Ten thousand manifest GETs as flows sharing the origin's uplink would cost O(N²) rate updates
   * (every start and end re-rates every other flow) for bytes that take that link about a second in all.
   */
  sendSmall(src: Host, dst: Host, bytes: number, done: () => void): void {
    const start = Math.max(this.q.now, src.smallFreeAt)
    const end = start + bytes / Math.min(src.up.capacity, dst.down.capacity)
    src.smallFreeAt = end
    for (const l of [src.up, ...this.via(src, dst), dst.down]) l.bytes += bytes
    this.q.at(end, done)
  }

  /** The WAN links between two hosts: none in the same site (or both in the core), else each site's side. */
  via(src: Host, dst: Host): Link[] {
    if (src.site === dst.site) return []
    const out: Link[] = []
    if (src.site !== undefined) out.push(this.wan[src.site]!.up)
    if (dst.site !== undefined) out.push(this.wan[dst.site]!.down)
    return out
  }

  /** A transfer from `src` to `dst`, across the WAN links between them. */
  send(src: Host, dst: Host, bytes: number, done: () => void): Flow {
    return this.net.start(src.up, dst.down, bytes, done, this.via(src, dst))
  }

  /** Whether the WAN between two hosts is cut now (a site's link down for a while). */
  cut(src: Host, dst: Host): boolean {
    const c = this.p.sites?.cut
    if (c === undefined || src.site === dst.site) return false
    if (src.site !== c.site && dst.site !== c.site) return false
    return this.q.now >= c.fromMs && this.q.now < c.toMs
  }

  get imageBytes(): number {
    return this.p.manifestBytes + this.p.blobBytes.reduce((a, b) => a + b, 0)
  }
}

/** A small stable hash (FNV-1a) for seeding per-node random streams. */
export function hash32(...parts: readonly (string | number)[]): number {
  let h = 0x811c9dc5
  for (const part of parts) {
    const s = `${part}\u0000`
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i)
      h = Math.imul(h, 0x01000193)
    }
  }
  return h >>> 0
}
