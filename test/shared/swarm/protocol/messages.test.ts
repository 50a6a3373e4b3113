import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../../../shared/chunks/bitfield.ts'
import { encodeChunkAttestation } from '../../../../shared/chunks/attestation.ts'
import type { Digest } from '../../../../shared/oci/digest.ts'
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  InvalidMessageError,
  MAX_CONTROL_FRAME_BYTES,
  type Request,
  type Response,
} from '../../../../shared/swarm/protocol/index.ts'
import { KIB, makeBlob, MIB, seederKey } from './helpers.ts'

const D = `sha256:${'ab'.repeat(32)}` as Digest
const D512 = `sha512:${'cd'.repeat(64)}` as Digest
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const json = (v: unknown): Uint8Array => enc(JSON.stringify(v))
const b64 = (bytes: Uint8Array | number[]): string => Buffer.from(Uint8Array.from(bytes)).toString('base64')

describe('requests', () => {
  const valid: [string, Request][] = [
    ['map', { t: 'map', digest: D }],
    ['map, sha512', { t: 'map', digest: D512 }],
    ['have', { t: 'have', digest: D }],
    ['have, long poll', { t: 'have', digest: D, known: 3, waitMs: 10_000 }],
    ['have, zero wait', { t: 'have', digest: D, known: 0, waitMs: 0 }],
    ['have, with a site (format 1.1)', { t: 'have', digest: D, known: 2, waitMs: 5000, site: 'store-17' }],
    ['chunk', { t: 'chunk', digest: D, index: 0 }],
    ['chunk, large index', { t: 'chunk', digest: D, index: 2 ** 32 }],
    ['fetch', { t: 'fetch', digest: D, registry: 'registry-1.docker.io', name: 'library/alpine' }],
    ['fetch, port', { t: 'fetch', digest: D, registry: 'localhost:5000', name: 'a/b/c' }],
    ['fetch, ipv4', { t: 'fetch', digest: D, registry: '10.0.0.1:443', name: 'x' }],
    ['fetch, ipv6', { t: 'fetch', digest: D, registry: '[::1]:5000', name: 'my-app_1.0/x' }],
  ]
  it.each(valid)('round-trips %s', (_, req) => {
    expect(decodeRequest(encodeRequest(req))).toEqual(req)
  })

  it('ignores unknown fields (a later minor version may add some)', () => {
    expect(decodeRequest(json({ t: 'map', digest: D, priority: 'high' }))).toEqual({ t: 'map', digest: D })
  })

  const hostile: [string, Uint8Array][] = [
    ['empty frame', new Uint8Array(0)],
    ['invalid UTF-8', Uint8Array.from([0x7b, 0xff, 0x7d])],
    ['not JSON', enc('{t:map}')],
    ['trailing garbage', enc(`{"t":"map","digest":"${D}"}x`)],
    ['null', enc('null')],
    ['array', enc(`["map","${D}"]`)],
    ['string', enc('"map"')],
    ['number', enc('42')],
    ['no type', json({ digest: D })],
    ['numeric type', json({ t: 1, digest: D })],
    ['unknown type', json({ t: 'put', digest: D })],
    ['type from a prototype', enc(`{"__proto__":{"t":"map"},"digest":"${D}"}`)],
    ['digest from a prototype', enc(`{"t":"map","__proto__":{"digest":"${D}"}}`)],
    ['missing digest', json({ t: 'map' })],
    ['short digest', json({ t: 'map', digest: 'sha256:abc' })],
    ['upper-case digest', json({ t: 'map', digest: D.toUpperCase() })],
    ['path traversal digest', json({ t: 'chunk', digest: 'sha256:../../../etc/passwd', index: 0 })],
    ['unknown algorithm', json({ t: 'map', digest: `md5:${'a'.repeat(32)}` })],
    ['numeric digest', json({ t: 'map', digest: 7 })],
    ['have, site with a slash', json({ t: 'have', digest: D, site: 'a/b' })],
    ['have, numeric site', json({ t: 'have', digest: D, site: 17 })],
    ['have, overlong site', json({ t: 'have', digest: D, site: 'a'.repeat(64) })],
    ['negative known', json({ t: 'have', digest: D, known: -1 })],
    ['fractional known', json({ t: 'have', digest: D, known: 1.5 })],
    ['string known', json({ t: 'have', digest: D, known: '3' })],
    ['unsafe known', json({ t: 'have', digest: D, known: 2 ** 53 })],
    ['null waitMs', json({ t: 'have', digest: D, waitMs: null })],
    ['infinite waitMs', enc(`{"t":"have","digest":"${D}","waitMs":1e400}`)],
    ['missing index', json({ t: 'chunk', digest: D })],
    ['negative index', json({ t: 'chunk', digest: D, index: -1 })],
    ['fractional index', json({ t: 'chunk', digest: D, index: 0.5 })],
    ['string index', json({ t: 'chunk', digest: D, index: '0' })],
    ['boolean index', json({ t: 'chunk', digest: D, index: true })],
    ['empty registry', json({ t: 'fetch', digest: D, registry: '', name: 'x' })],
    ['URL registry', json({ t: 'fetch', digest: D, registry: 'http://evil', name: 'x' })],
    ['registry with path', json({ t: 'fetch', digest: D, registry: 'host/x', name: 'x' })],
    ['registry with space', json({ t: 'fetch', digest: D, registry: 'a b', name: 'x' })],
    ['registry with two ports', json({ t: 'fetch', digest: D, registry: 'a:1:2', name: 'x' })],
    ['long registry', json({ t: 'fetch', digest: D, registry: Array(5).fill('a'.repeat(60)).join('.'), name: 'x' })],
    ['upper-case name', json({ t: 'fetch', digest: D, registry: 'r', name: 'Library/alpine' })],
    ['name traversal', json({ t: 'fetch', digest: D, registry: 'r', name: '../x' })],
    ['empty name component', json({ t: 'fetch', digest: D, registry: 'r', name: 'a//b' })],
    ['missing name', json({ t: 'fetch', digest: D, registry: 'r' })],
    ['frame over 64 KiB', json({ t: 'map', digest: D, pad: 'x'.repeat(MAX_CONTROL_FRAME_BYTES) })],
  ]
  it.each(hostile)('rejects %s with InvalidMessageError', (_, bytes) => {
    expect(() => decodeRequest(bytes)).toThrow(InvalidMessageError)
  })

  it('survives deeply nested JSON within the frame limit', () => {
    const depth = (MAX_CONTROL_FRAME_BYTES - 200) / 2
    const bytes = enc(`{"t":"map","digest":"${D}","x":${'['.repeat(depth)}${']'.repeat(depth)}}`)
    let result: unknown
    try {
      result = decodeRequest(bytes)
    } catch (err) {
      result = err
    }
    // Either parsed (unknown field ignored) or refused as invalid: never another kind of error.
    if (result instanceof Error) expect(result).toBeInstanceOf(InvalidMessageError)
    else expect(result).toEqual({ t: 'map', digest: D })
  })
})

describe('responses', () => {
  it('round-trips every response type', async () => {
    const key = await seederKey()
    const blob = await makeBlob(200 * KIB, 64 * KIB, 1, key)
    const bitfield = new Bitfield(4)
    bitfield.set(0)
    bitfield.set(3)
    const cases: Response[] = [
      { t: 'none' },
      { t: 'busy' },
      { t: 'map', length: 1234 },
      { t: 'have', size: 200 * KIB, chunkSize: 64 * KIB, bitfield, complete: false },
      { t: 'have', size: 200 * KIB, chunkSize: 64 * KIB, bitfield: Bitfield.full(4), complete: true },
      { t: 'have', size: 0, chunkSize: 64 * KIB, bitfield: new Bitfield(0), complete: true },
      { t: 'have', size: 200 * KIB, chunkSize: 64 * KIB, bitfield, complete: false, site: 'eu-west-1a' },
      { t: 'chunk', index: 2, length: 64 * KIB },
      { t: 'chunk', index: 3, length: 8 * KIB, attestation: blob.attestations[3]! },
      { t: 'fetching', size: 5 * MIB, chunkSize: 4 * MIB },
      { t: 'error', message: 'registry unreachable' },
    ]
    for (const res of cases) {
      const back = decodeResponse(encodeResponse(res))
      if (res.t === 'have' && back.t === 'have') {
        expect([...back.bitfield.indexes()]).toEqual([...res.bitfield.indexes()])
        expect(back.bitfield.length).toBe(res.bitfield.length)
        expect({ ...back, bitfield: undefined }).toEqual({ ...res, bitfield: undefined })
      } else {
        expect(back).toEqual(res)
      }
    }
  })

  it('cuts a long error message', () => {
    const back = decodeResponse(json({ t: 'error', message: 'x'.repeat(10_000) }))
    expect(back.t === 'error' && back.message.length).toBe(512)
  })

  const have = (o: Record<string, unknown>): Uint8Array =>
    json({ t: 'have', size: 200 * KIB, chunkSize: 64 * KIB, bits: b64([0x90]), count: 2, complete: false, ...o })

  it('accepts the well-formed have used by the table below', () => {
    const res = decodeResponse(have({}))
    expect(res.t === 'have' && [...res.bitfield.indexes()]).toEqual([0, 3])
  })

  const hostile: [string, Uint8Array][] = [
    ['unknown type', json({ t: 'chunks' })],
    ['no type', json({})],
    ['not an object', enc('[]')],
    ['map without length', json({ t: 'map' })],
    ['map with negative length', json({ t: 'map', length: -1 })],
    ['map with inline base64 (not this wire)', json({ t: 'map', signed: 'AAAA' })],
    ['have: bits not base64', have({ bits: '!!!!' })],
    ['have: bits non-canonical base64', have({ bits: 'kA' })],
    ['have: bits with whitespace', have({ bits: ' kA==' })],
    ['have: bits too long', have({ bits: b64([0x90, 0]) })],
    ['have: bits too short', have({ bits: '' })],
    ['have: spare bits set', have({ bits: b64([0x91]), count: 3 })],
    ['have: count lies', have({ count: 3 })],
    ['have: complete with chunks missing', have({ complete: true })],
    ['have: complete not boolean', have({ complete: 'yes' })],
    ['have: chunk size too small', have({ chunkSize: 1000 })],
    ['have: chunk size too large', have({ chunkSize: 128 * MIB })],
    ['have: negative size', have({ size: -1 })],
    ['have: huge size, tiny bits', have({ size: 2 ** 53 - 1 })],
    ['have: bits missing', have({ bits: undefined })],
    ['chunk: zero length', json({ t: 'chunk', index: 0, length: 0 })],
    ['chunk: over 64 MiB', json({ t: 'chunk', index: 0, length: 64 * MIB + 1 })],
    ['chunk: negative index', json({ t: 'chunk', index: -1, length: 10 })],
    ['chunk: attestation not base64', json({ t: 'chunk', index: 0, length: 10, attestation: '@@' })],
    ['chunk: attestation garbage', json({ t: 'chunk', index: 0, length: 10, attestation: b64([1, 2, 3]) })],
    ['chunk: attestation oversized', json({ t: 'chunk', index: 0, length: 10, attestation: b64(new Array(600)) })],
    ['fetching: bad chunk size', json({ t: 'fetching', size: 10, chunkSize: 3 })],
    ['fetching: no size', json({ t: 'fetching', chunkSize: 4 * MIB })],
    ['error: message not a string', json({ t: 'error', message: { text: 'x' } })],
  ]
  it.each(hostile)('rejects %s with InvalidMessageError', (_, bytes) => {
    expect(() => decodeResponse(bytes)).toThrow(InvalidMessageError)
  })

  it('rejects an attestation whose envelope version is wrong', async () => {
    const key = await seederKey()
    const blob = await makeBlob(100 * KIB, 64 * KIB, 2, key)
    const bytes = encodeChunkAttestation(blob.attestations[0]!)
    const good = json({ t: 'chunk', index: 0, length: 64 * KIB, attestation: b64(bytes) })
    expect(decodeResponse(good)).toMatchObject({ t: 'chunk', attestation: { index: 0, digest: blob.digest } })
    bytes[0]! ^= 0xff
    const bad = json({ t: 'chunk', index: 0, length: 64 * KIB, attestation: b64(bytes) })
    expect(() => decodeResponse(bad)).toThrow(InvalidMessageError)
  })
})

describe('edge sites on the wire (format 1.1)', () => {
  it('a have answer from a node that predates sites decodes with no site, and one with a site keeps it', () => {
    const old = json({ t: 'have', size: 1, chunkSize: 64 * KIB, bits: b64([0]), count: 0, complete: false })
    const res = decodeResponse(old)
    expect(res.t === 'have' && res.site).toBe(undefined)
    const withSite = json({
      t: 'have',
      size: 1,
      chunkSize: 64 * KIB,
      bits: b64([0]),
      count: 0,
      complete: false,
      site: 's1',
    })
    const back = decodeResponse(withSite)
    expect(back.t === 'have' && back.site).toBe('s1')
  })

  it('a have request without a site (an old asker) decodes as before', () => {
    expect(decodeRequest(json({ t: 'have', digest: D, known: 1 }))).toEqual({ t: 'have', digest: D, known: 1 })
  })

  it('rejects a have answer whose site is not a site name', () => {
    const bad = json({
      t: 'have',
      size: 1,
      chunkSize: 64 * KIB,
      bits: b64([0]),
      count: 0,
      complete: false,
      site: '../x',
    })
    expect(() => decodeResponse(bad)).toThrow(InvalidMessageError)
  })
})
