import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Bitfield, InvalidBitfieldError } from '../../../shared/chunks/index.ts'

describe('Bitfield', () => {
  it('sets, clears and counts bits, MSB first', () => {
    const bf = new Bitfield(10)
    expect(bf.set(0)).toBe(true)
    expect(bf.set(0)).toBe(false)
    bf.set(9)
    expect([...bf.encode()]).toEqual([0x80, 0x40])
    expect(bf.count).toBe(2)
    expect(bf.firstMissing()).toBe(1)
    expect(bf.clear(0)).toBe(true)
    expect([...bf.indexes()]).toEqual([9])
    expect(() => bf.set(10)).toThrow(InvalidBitfieldError)
    expect(bf.has(10)).toBe(false)
  })

  it('knows when it is complete', () => {
    const bf = Bitfield.full(9)
    expect(bf.complete).toBe(true)
    expect(bf.firstMissing()).toBe(9)
    expect(new Bitfield(0).complete).toBe(true)
  })

  it('ORs itself into a byte array: the union of several bitfields', () => {
    const a = new Bitfield(10)
    const b = new Bitfield(10)
    a.set(0)
    b.set(9)
    b.set(0)
    const acc = new Uint8Array(2)
    a.orInto(acc)
    b.orInto(acc)
    expect([...acc]).toEqual([0x80, 0x40])
    expect([...Bitfield.decode(acc, 10).indexes()]).toEqual([0, 9])
  })

  it('rejects a wire form of the wrong length or with spare bits set', () => {
    expect(() => Bitfield.decode(new Uint8Array(1), 9)).toThrow(InvalidBitfieldError)
    expect(() => Bitfield.decode(new Uint8Array([0, 0x01]), 9)).toThrow(/spare/)
    expect(Bitfield.decode(new Uint8Array([0, 0x80]), 9).has(8)).toBe(true)
  })

  it('property: decode(encode(b)) has the same bits, count and completeness', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(fc.nat({ max: n })))),
        ([length, indexes]) => {
          const bf = new Bitfield(length)
          for (const i of indexes) if (i < length) bf.set(i)
          const back = Bitfield.decode(bf.encode(), length)
          expect([...back.indexes()]).toEqual([...bf.indexes()])
          expect(back.count).toBe(bf.count)
          expect(back.complete).toBe(bf.complete)
          expect(bf.clone().encode()).toEqual(bf.encode())
        },
      ),
    )
  })
})
