import type { Stream } from '@libp2p/interface'
import { streamPair } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { TokenBucket } from '../../../../shared/rate/token-bucket.ts'
import { deadline } from '../../../../shared/swarm/wire/deadline.ts'
import { InvalidMessageError } from '../../../../shared/swarm/wire/errors.ts'
import { encodeVarint, FrameStream } from '../../../../shared/swarm/protocol/framing.ts'
import { bytesOf, KIB } from './helpers.ts'

const open: Stream[] = []
afterEach(() => {
  for (const s of open.splice(0)) s.abort(new Error('test over'))
})

async function pair(maxBufferBytes = 1024 * KIB): Promise<{ raw: Stream; frames: FrameStream; inbound: Stream }> {
  const [outbound, inbound] = await streamPair()
  open.push(outbound, inbound)
  return { raw: outbound, frames: new FrameStream(inbound, { maxBufferBytes }), inbound }
}

describe('encodeVarint', () => {
  const table: [number, number[]][] = [
    [0, [0x00]],
    [1, [0x01]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [16_383, [0xff, 0x7f]],
    [16_384, [0x80, 0x80, 0x01]],
    [64 * 1024 * 1024, [0x80, 0x80, 0x80, 0x20]],
    [2 ** 53 - 1, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]],
  ]
  it.each(table)('encodes %d', (value, bytes) => {
    expect([...encodeVarint(value)]).toEqual(bytes)
  })

  it.each([-1, 1.5, Number.NaN, 2 ** 53])('refuses %d', (value) => {
    expect(() => encodeVarint(value)).toThrow(RangeError)
  })
})

describe('FrameStream', () => {
  it('reads back frames written in one send, including an empty one', async () => {
    const [outbound, inbound] = await streamPair()
    open.push(outbound, inbound)
    const writer = new FrameStream(outbound, { maxBufferBytes: 1024 })
    const reader = new FrameStream(inbound, { maxBufferBytes: 1024 })
    await writer.write([Uint8Array.of(1, 2, 3), new Uint8Array(0), bytesOf(300, 1)])
    expect([...(await reader.read(10))]).toEqual([1, 2, 3])
    expect((await reader.read(10)).byteLength).toBe(0)
    expect(await reader.read(300)).toEqual(bytesOf(300, 1))
  })

  it('reports a body’s progress in slices when asked, and still returns it byte for byte', async () => {
    const { raw, frames } = await pair(2048 * KIB)
    const body = bytesOf(1000 * KIB, 7)
    raw.send(encodeVarint(body.byteLength))
    for (let at = 0; at < body.byteLength; at += 100 * KIB) raw.send(body.subarray(at, at + 100 * KIB))
    const seen: number[] = []
    const length = await frames.readLength(body.byteLength)
    const got = await frames.readBody(length, { onProgress: (n) => seen.push(n) })
    expect(Buffer.from(got).equals(Buffer.from(body))).toBe(true)
    expect(seen).toEqual([256 * KIB, 512 * KIB, 768 * KIB, 1000 * KIB])
  })

  it('refuses a frame over the limit on its prefix, before the body arrives', async () => {
    const { raw, frames } = await pair()
    raw.send(encodeVarint(64 * KIB + 1))
    // Only the prefix was sent: a reader that waited for the body would hang here.
    await expect(frames.read(64 * KIB)).rejects.toThrow(InvalidMessageError)
  })

  const badPrefixes: [string, number[]][] = [
    ['non-minimal zero', [0x80, 0x00]],
    ['non-minimal one', [0x81, 0x00]],
    ['nine-byte prefix', [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  ]
  it.each(badPrefixes)('refuses a %s length prefix', async (_, bytes) => {
    const { raw, frames } = await pair()
    raw.send(Uint8Array.from(bytes))
    await expect(frames.read(Number.MAX_SAFE_INTEGER)).rejects.toThrow(InvalidMessageError)
  })

  it('fails when the stream ends inside a frame', async () => {
    const { raw, frames } = await pair()
    raw.send(Uint8Array.of(10, 1, 2, 3))
    await raw.close()
    await expect(frames.read(100)).rejects.toThrow(/EOF/)
  })

  it('aborts the stream when the peer sends more than the buffer bound', async () => {
    const { raw, frames, inbound } = await pair(1 * KIB)
    const closed = new Promise((resolve) => inbound.addEventListener('close', resolve, { once: true }))
    raw.send(bytesOf(8 * KIB, 2))
    await closed
    expect(inbound.status).toBe('aborted')
    await expect(frames.read(100)).rejects.toThrow()
  })

  it('writes a data frame in slices that each take from the bucket first', async () => {
    const [outbound, inbound] = await streamPair()
    open.push(outbound, inbound)
    class CountingBucket extends TokenBucket {
      readonly takes: number[] = []
      override take(n: number, opts?: { signal?: AbortSignal }): Promise<void> {
        this.takes.push(n)
        return super.take(n, opts)
      }
    }
    const bucket = new CountingBucket({ bytesPerSecond: 1024 * 1024 * KIB })
    const writer = new FrameStream(outbound, { maxBufferBytes: 1024 })
    const reader = new FrameStream(inbound, { maxBufferBytes: 512 * KIB })
    const data = bytesOf(256 * KIB + 5, 3)
    await writer.writeData(data, { bucket })
    expect(await reader.read(512 * KIB)).toEqual(data)
    expect(bucket.takes).toEqual([64 * KIB, 64 * KIB, 64 * KIB, 64 * KIB, 5])
  })

  it('stops writing a data frame when the signal aborts while waiting for the bucket', async () => {
    const { raw } = await pair()
    const bucket = new TokenBucket({ bytesPerSecond: 1 * KIB, burstBytes: 64 * KIB })
    const writer = new FrameStream(raw, { maxBufferBytes: 1024 })
    const controller = new AbortController()
    const writing = writer.writeData(bytesOf(256 * KIB, 4), { bucket, signal: controller.signal })
    controller.abort(new Error('peer gone'))
    await expect(writing).rejects.toThrow('peer gone')
  })
})

describe('deadline', () => {
  it('aborts with the timeout error and says so', async () => {
    const d = deadline(5, () => new Error('late'), [])
    await new Promise((resolve) => d.signal.addEventListener('abort', resolve))
    expect(d.timedOut).toBe(true)
    expect((d.signal.reason as Error).message).toBe('late')
  })

  it('follows a parent with the parent reason, and not the timer after dispose', async () => {
    const parent = new AbortController()
    const d = deadline(1000, () => new Error('late'), [parent.signal])
    parent.abort(new Error('caller'))
    expect(d.signal.aborted).toBe(true)
    expect(d.timedOut).toBe(false)
    expect((d.signal.reason as Error).message).toBe('caller')

    const d2 = deadline(1, () => new Error('late'), [])
    d2.dispose()
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(d2.signal.aborted).toBe(false)
  })

  it('starts aborted when a parent already is', () => {
    const d = deadline(1000, () => new Error('late'), [AbortSignal.abort(new Error('already'))])
    expect(d.signal.aborted).toBe(true)
    expect((d.signal.reason as Error).message).toBe('already')
  })
})
