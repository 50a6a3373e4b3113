import { describe, expect, it } from 'vitest'
import { siteFromUserAgent, userAgentFor } from '../../../shared/p2p/index.ts'

describe('the site in the user agent', () => {
  it('round-trips a site, and none', () => {
    expect(siteFromUserAgent(userAgentFor('store-17'))).toBe('store-17')
    expect(userAgentFor(undefined)).toBe('shoal')
    expect(siteFromUserAgent(userAgentFor(undefined))).toBeUndefined()
  })

  it("ignores another program's agent and a name --site would refuse", () => {
    expect(siteFromUserAgent('libp2p/3.3.11 UserAgent=v24 site/store-17')).toBeUndefined()
    expect(siteFromUserAgent('shoal site/-bad')).toBeUndefined()
    expect(siteFromUserAgent('shoal site/')).toBeUndefined()
    expect(siteFromUserAgent(undefined)).toBeUndefined()
  })
})
