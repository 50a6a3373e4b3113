/** A satisfiable byte range, `end` inclusive as in HTTP. */
export interface HttpRange {
  readonly start: number
  readonly end: number
}

export type RangeResult =
  | { readonly kind: 'none' } // no Range header, or one we ignore (RFC 9110 allows serving 200)
  | { readonly kind: 'range'; readonly range: HttpRange }
  | { readonly kind: 'unsatisfiable' }

const SINGLE_RANGE_RE = /^bytes=(\d{0,16})-(\d{0,16})$/

/**
 * Parses a single-range `Range` header against a known size. Multiple ranges and malformed
 * headers are ignored (full 200 response), as RFC 9110 permits; only a well-formed single
 * range that lies outside the representation is unsatisfiable (416).
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' }
  const m = SINGLE_RANGE_RE.exec(header.trim())
  if (m === null) return { kind: 'none' }
  const [, first, last] = m as unknown as [string, string, string]
  if (first === '' && last === '') return { kind: 'none' }
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'range', range: { start: Math.max(0, size - suffix), end: size - 1 } }
  }
  const start = Number(first)
  if (start >= size) return { kind: 'unsatisfiable' }
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (end < start) return { kind: 'none' }
  return { kind: 'range', range: { start, end } }
}
