import { describe, expect, it } from 'vitest'
import { type Challenge, formatChallenge, parseWwwAuthenticate } from '../../../shared/origin/index.ts'

const HUB =
  'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'

const CASES: [string, string, Challenge[]][] = [
  [
    'Docker Hub bearer',
    HUB,
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull',
        },
      },
    ],
  ],
  [
    'commas inside a quoted scope',
    'Bearer realm="https://r/token",scope="repository:a/b:pull,push",error="insufficient_scope"',
    [
      {
        scheme: 'bearer',
        params: { realm: 'https://r/token', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' },
      },
    ],
  ],
  ['basic', 'Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
  [
    'escaped quotes and backslashes',
    'Basic realm="say \\"hi\\" \\\\ bye"',
    [{ scheme: 'basic', params: { realm: 'say "hi" \\ bye' } }],
  ],
  [
    'two challenges in one value',
    'Basic realm="a", Bearer realm="https://t/x", service="s"',
    [
      { scheme: 'basic', params: { realm: 'a' } },
      { scheme: 'bearer', params: { realm: 'https://t/x', service: 's' } },
    ],
  ],
  [
    'bare scheme followed by another challenge',
    'Negotiate, Basic realm="b"',
    [
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'b' } },
    ],
  ],
  [
    'token68',
    'Negotiate abc/+def==, Basic realm="x"',
    [
      { scheme: 'negotiate', params: {}, token68: 'abc/+def==' },
      { scheme: 'basic', params: { realm: 'x' } },
    ],
  ],
  [
    'case-insensitive scheme and names, spaces around =',
    'BEARER Realm = "https://t" , SERVICE=svc',
    [{ scheme: 'bearer', params: { realm: 'https://t', service: 'svc' } }],
  ],
  [
    'unquoted URL value',
    'Bearer realm=https://t/token,service=reg',
    [{ scheme: 'bearer', params: { realm: 'https://t/token', service: 'reg' } }],
  ],
  ['first duplicate wins', 'Bearer realm="a",realm="b"', [{ scheme: 'bearer', params: { realm: 'a' } }]],
  ['unterminated quote', 'Bearer realm="https://t', [{ scheme: 'bearer', params: { realm: 'https://t' } }]],
  ['empty', '', []],
  ['only commas and blanks', ' , ,, ', []],
  ['garbage before a challenge', '"junk", Basic realm="r"', [{ scheme: 'basic', params: { realm: 'r' } }]],
]

describe('parseWwwAuthenticate', () => {
  it.each(CASES)('%s', (_name, header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected)
  })

  it('round-trips through formatChallenge', () => {
    const cs = parseWwwAuthenticate(`${HUB}, Basic realm="q\\"uote"`)
    expect(parseWwwAuthenticate(cs.map(formatChallenge).join(', '))).toEqual(cs)
    expect(formatChallenge(cs[1]!)).toBe('Basic realm="q\\"uote"')
  })
})
