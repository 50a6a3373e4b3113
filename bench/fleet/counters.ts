/** Counters of one host's link, seen from the host (tx = what the host sent). */
export interface LinkCounters {
  readonly txBytes: number
  readonly txPackets: number
  readonly rxBytes: number
  readonly rxPackets: number
}

export const ZERO_COUNTERS: LinkCounters = {
  txBytes: 0,
  txPackets: 0,
  rxBytes: 0,
  rxPackets: 0,
}

/**
 * Ethernet (14) + IPv4 (20) + TCP (20) + the timestamp option Linux sends by default (12). A GSO
 * super-packet counts once with one set of headers, so this stays right with offloads on.
 */
export const HEADER_BYTES_PER_PACKET = 66

/** TCP payload estimated from link bytes: the link counts every frame's headers too (~4.5% at MTU 1500). */
export function payloadBytes(bytes: number, packets: number): number {
  return Math.max(0, bytes - packets * HEADER_BYTES_PER_PACKET)
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {}
}

/**
 * `ip -s -j link show` of the hub namespace → each hub-side veth's counters flipped to the host's view:
 * what the hub end received is what the host sent. One command reads the whole fleet.
 */
export function parseHubStats(json: string): ReadonlyMap<string, LinkCounters> {
  const parsed: unknown = JSON.parse(json)
  if (!Array.isArray(parsed)) throw new TypeError('ip -s -j link show: expected an array')
  const out = new Map<string, LinkCounters>()
  for (const item of parsed) {
    const link = record(item)
    const name = link['ifname']
    if (typeof name !== 'string') continue
    const stats = record(link['stats64'] ?? link['stats'])
    const rx = record(stats['rx'])
    const tx = record(stats['tx'])
    out.set(name, {
      txBytes: num(rx['bytes']),
      txPackets: num(rx['packets']),
      rxBytes: num(tx['bytes']),
      rxPackets: num(tx['packets']),
    })
  }
  return out
}

export function diffCounters(before: LinkCounters, after: LinkCounters): LinkCounters {
  return {
    txBytes: after.txBytes - before.txBytes,
    txPackets: after.txPackets - before.txPackets,
    rxBytes: after.rxBytes - before.rxBytes,
    rxPackets: after.rxPackets - before.rxPackets,
  }
}

export function sumCounters(items: Iterable<LinkCounters>): LinkCounters {
  let txBytes = 0
  let txPackets = 0
  let rxBytes = 0
  let rxPackets = 0
  for (const c of items) {
    txBytes += c.txBytes
    txPackets += c.txPackets
    rxBytes += c.rxBytes
    rxPackets += c.rxPackets
  }
  return { txBytes, txPackets, rxBytes, rxPackets }
}

/** What a host sent, as link bytes and as estimated payload. */
export interface SentBytes {
  readonly wire: number
  readonly payload: number
}

export function sent(c: LinkCounters): SentBytes {
  return { wire: c.txBytes, payload: payloadBytes(c.txBytes, c.txPackets) }
}
