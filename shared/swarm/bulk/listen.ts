import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'

export interface HostPort {
  readonly host: string
  readonly port: number
}

/**
 * The IP a multiaddr starts with (`/ip4/…` or `/ip6/…`), else undefined. The bulk port is reached at the IP the
 * libp2p connection goes to, so a requester needs no address from the server beyond a port.
 */
export function ipOf(addr: Multiaddr): string | undefined {
  const first = addr.getComponents()[0]
  return first !== undefined && (first.name === 'ip4' || first.name === 'ip6') ? first.value : undefined
}

/**
 * Default bulk listen address: the host of the first p2p listen multiaddr (peers reach the bulk port at the IP
 * they reach libp2p at), any port. Undefined when there is no p2p listen address (the swarm is off).
 */
export function defaultBulkListen(p2pListen: readonly string[]): HostPort | undefined {
  const first = p2pListen[0]
  if (first === undefined) return undefined
  let ip: string | undefined
  try {
    ip = ipOf(multiaddr(first))
  } catch {
    ip = undefined
  }
  return { host: ip ?? '0.0.0.0', port: 0 }
}
