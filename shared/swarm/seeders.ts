// Seeders as agents and other seeders name them: a multiaddr ending in /p2p/<id>, whose id is the key that signs
// the chunk maps agents accept, and the rendezvous rule that says which seeder owns a blob.
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { rendezvousOrder, rendezvousOwner } from './election.ts'

/** A peer by its id and an address that reaches it (the address ends in /p2p/<id>). */
export interface PeerRef {
  readonly id: string
  readonly addr: Multiaddr
}

/** A trusted seeder: agents accept chunk maps signed by its id, and ask it (by rendezvous) to pull cold blobs. */
export type SeederRef = PeerRef

/** Multicodec of the /p2p/ component. */
const P2P_CODE = 421

/** A seeder address as `--seeder` takes it: TCP to an IP or DNS name, and the peer id that signs its maps. */
const SEEDER_ADDR_RE = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+\/p2p\/[1-9A-HJ-NP-Za-km-z]+$/

/** The peer id in `addr`'s (first) /p2p/ component, or undefined when it names none. */
export function peerIdOf(addr: Multiaddr): string | undefined {
  return addr.getComponents().find((c) => c.name === 'p2p')?.value
}

/** `addr` without its trailing /p2p/<id>: what a peer store keeps as the peer's transport address. */
export function withoutPeerId(addr: Multiaddr): Multiaddr {
  return addr.decapsulateCode(P2P_CODE)
}

/** `addr` (text) ending in /p2p/`id`, unless it names a peer already. */
export function withPeerId(addr: string, id: string): string {
  return addr.includes('/p2p/') ? addr : `${addr}/p2p/${id}`
}

/** A multiaddr naming a peer (/p2p/<id>); undefined when `text` is not a multiaddr or names no peer. */
export function parsePeerAddr(text: string): PeerRef | undefined {
  let addr: Multiaddr
  try {
    addr = multiaddr(text)
  } catch {
    return undefined
  }
  const id = peerIdOf(addr)
  return id === undefined ? undefined : { id, addr }
}

/** A `--seeder` address (`/ip4|ip6|dns4|dns6|dns/HOST/tcp/PORT/p2p/PEERID`), or undefined when it is not one. */
export function parseSeederAddr(text: string): SeederRef | undefined {
  return SEEDER_ADDR_RE.test(text) ? parsePeerAddr(text) : undefined
}

/** Other seeders named in `--bootstrap` by a multiaddr ending in /p2p/<id> (dns: entries carry no id). */
export function seedersFromBootstrap(entries: readonly string[]): SeederRef[] {
  const out: SeederRef[] = []
  for (const e of entries) {
    if (e.startsWith('dns:')) continue
    // The p2p layer reports malformed bootstrap entries; here they simply own nothing.
    const ref = parsePeerAddr(e)
    if (ref !== undefined) out.push(ref)
  }
  return out
}

/** The seeder that owns `digest`: the one asked to pull it from the origin, once for the whole swarm. */
export function seederFor<T extends PeerRef>(seeders: readonly T[], digest: string): T | undefined {
  return rendezvousOwner(seeders, digest)
}

/** The seeders in the order an agent asks them about `digest`: its owner first. */
export function seedersInOrder<T extends PeerRef>(seeders: readonly T[], digest: string): T[] {
  return rendezvousOrder(seeders, digest)
}
