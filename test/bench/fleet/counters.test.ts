import { describe, expect, it } from 'vitest'
import {
  diffCounters,
  HEADER_BYTES_PER_PACKET,
  parseHubStats,
  payloadBytes,
  sent,
  sumCounters,
} from '../../../bench/fleet/counters.ts'

// The shape `ip -s -j link show` prints (iproute2 6.1), trimmed.
const HUB_JSON = JSON.stringify([
  { ifindex: 1, ifname: 'lo', stats64: { rx: { bytes: 0, packets: 0 }, tx: { bytes: 0, packets: 0 } } },
  {
    ifindex: 5,
    ifname: 'b-origin',
    link_netnsid: 1,
    stats64: { rx: { bytes: 134_000_000, packets: 3000, errors: 0 }, tx: { bytes: 120_000, packets: 1800 } },
  },
  { ifindex: 6, ifname: 'b-node-1', stats: { rx: { bytes: 10, packets: 1 }, tx: { bytes: 20, packets: 2 } } },
  { ifindex: 7, ifname: 'br0' },
])

describe('parseHubStats', () => {
  it("flips the hub side's counters to the host's view", () => {
    const m = parseHubStats(HUB_JSON)
    expect(m.get('b-origin')).toEqual({ txBytes: 134_000_000, txPackets: 3000, rxBytes: 120_000, rxPackets: 1800 })
    expect(m.get('b-node-1')).toEqual({ txBytes: 10, txPackets: 1, rxBytes: 20, rxPackets: 2 })
    expect(m.get('br0')).toEqual({ txBytes: 0, txPackets: 0, rxBytes: 0, rxPackets: 0 })
  })

  it('refuses output that is not a list of links', () => {
    expect(() => parseHubStats('{}')).toThrow(TypeError)
    expect(() => parseHubStats('not json')).toThrow(SyntaxError)
  })
})

describe('payloadBytes', () => {
  it('takes one set of Ethernet, IPv4 and TCP headers off per packet', () => {
    expect(HEADER_BYTES_PER_PACKET).toBe(66)
    // a full 1500-byte MTU frame carries 1448 payload bytes with timestamps on
    expect(payloadBytes(1514, 1)).toBe(1448)
    expect(payloadBytes(1000 * 1514, 1000)).toBe(1000 * 1448)
  })

  it('never goes negative (pure ACKs carry no payload)', () => {
    expect(payloadBytes(66 * 10, 10)).toBe(0)
    expect(payloadBytes(10, 10)).toBe(0)
  })
})

describe('diffCounters, sumCounters, sent', () => {
  const a = { txBytes: 100, txPackets: 1, rxBytes: 50, rxPackets: 1 }
  const b = { txBytes: 1614, txPackets: 2, rxBytes: 116, rxPackets: 2 }

  it('subtracts and adds every field', () => {
    expect(diffCounters(a, b)).toEqual({ txBytes: 1514, txPackets: 1, rxBytes: 66, rxPackets: 1 })
    expect(sumCounters([a, b])).toEqual({ txBytes: 1714, txPackets: 3, rxBytes: 166, rxPackets: 3 })
    expect(sumCounters([])).toEqual({ txBytes: 0, txPackets: 0, rxBytes: 0, rxPackets: 0 })
  })

  it('reports what a host sent as wire and payload bytes', () => {
    expect(sent(diffCounters(a, b))).toEqual({ wire: 1514, payload: 1448 })
  })
})
