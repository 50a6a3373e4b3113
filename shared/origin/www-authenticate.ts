/** One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1). */
export interface Challenge {
  /** Lower case: `bearer`, `basic`... */
  readonly scheme: string
  /** Parameter names in lower case; values unquoted and unescaped. */
  readonly params: Readonly<Record<string, string>>
  /** The `token68` form some schemes use instead of parameters. */
  readonly token68?: string
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/
const TOKEN68_CHAR = /[A-Za-z0-9._~+/-]/

/**
 * Parses every challenge in a header value. Lenient: garbage is skipped, never thrown, since the
 * value comes from a remote server and a half-readable challenge is still worth trying.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const p = new Parser(header)
  const out: Challenge[] = []
  for (;;) {
    p.skip(/[\s,]/)
    if (p.done()) return out
    const scheme = p.read(TCHAR)
    if (scheme === '') {
      p.skipPast(',')
      continue
    }
    const params: Record<string, string> = {}
    let token68: string | undefined
    p.skip(/[ \t]/)
    const start = p.i
    const t68 = p.read(TOKEN68_CHAR) + p.read(/=/)
    p.skip(/[ \t]/)
    // `Negotiate abc==`: a token68 stands alone, followed by a comma or the end, never by a value.
    if (t68 !== '' && !t68.startsWith('=') && (p.done() || p.peek() === ',')) {
      token68 = t68
    } else {
      p.i = start
      // readParam rewinds and stops at the next challenge's scheme (a token not followed by `=`).
      while (readParam(p, params)) {
        // each call consumes one param
      }
    }
    out.push(
      token68 === undefined
        ? { scheme: scheme.toLowerCase(), params }
        : { scheme: scheme.toLowerCase(), params, token68 },
    )
  }
}

/** Reads `name = value` (value a token or quoted string); false when no parameter is here. */
function readParam(p: Parser, params: Record<string, string>): boolean {
  p.skip(/[\s,]/)
  const save = p.i
  const name = p.read(TCHAR)
  p.skip(/[ \t]/)
  if (name === '' || p.peek() !== '=') {
    p.i = save
    return false
  }
  p.i++
  p.skip(/[ \t]/)
  // Unquoted values are meant to be tokens, but some servers send bare URLs: read to the comma.
  const value = p.peek() === '"' ? p.quoted() : p.read(/[^\s,]/)
  const key = name.toLowerCase()
  // RFC 9110: each parameter name occurs once per challenge; keep the first.
  if (!(key in params)) params[key] = value
  p.skip(/[ \t]/)
  if (!p.done() && p.peek() !== ',') p.skipPast(',')
  return true
}

/** Formats challenges back into a header value (every parameter quoted). */
export function formatChallenge(c: Challenge): string {
  const scheme = c.scheme.length > 0 ? c.scheme[0]!.toUpperCase() + c.scheme.slice(1) : c.scheme
  if (c.token68 !== undefined) return `${scheme} ${c.token68}`
  const params = Object.entries(c.params).map(([k, v]) => `${k}="${v.replace(/["\\]/g, '\\$&')}"`)
  return params.length === 0 ? scheme : `${scheme} ${params.join(',')}`
}

class Parser {
  readonly s: string
  i = 0
  constructor(s: string) {
    this.s = s
  }
  done(): boolean {
    return this.i >= this.s.length
  }
  peek(): string {
    return this.s[this.i] ?? ''
  }
  read(re: RegExp): string {
    const start = this.i
    while (!this.done() && re.test(this.s[this.i]!)) this.i++
    return this.s.slice(start, this.i)
  }
  skip(re: RegExp): void {
    this.read(re)
  }
  skipPast(ch: string): void {
    const j = this.s.indexOf(ch, this.i)
    this.i = j === -1 ? this.s.length : j + 1
  }
  quoted(): string {
    this.i++
    let out = ''
    while (!this.done()) {
      const c = this.s[this.i++]!
      if (c === '"') return out
      if (c === '\\' && !this.done()) out += this.s[this.i++]!
      else out += c
    }
    return out
  }
}
