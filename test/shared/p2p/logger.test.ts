import { disable, enable } from '@libp2p/logger'
import { afterEach, describe, expect, it } from 'vitest'
import { quietLogger } from '../../../shared/p2p/logger.ts'

afterEach(() => {
  disable()
})

describe('quietLogger', () => {
  it('gives a scope DEBUG does not name a silent logger, and its scopes too', () => {
    disable()
    const log = quietLogger().forComponent('libp2p:yamux')
    expect(log.enabled).toBe(false)
    // Not a weald debug instance (those carry their namespace): nothing was made for a logger nobody reads.
    expect(log).not.toHaveProperty('namespace')
    const scoped = log.newScope('stream:outbound:1')
    expect(scoped.enabled).toBe(false)
    expect(scoped).not.toHaveProperty('namespace')
    expect(() => {
      scoped('x %s', 'y')
      scoped.error('e')
      scoped.trace('t')
    }).not.toThrow()
  })

  it("gives a scope DEBUG names libp2p's own logger", () => {
    enable('libp2p:yamux:stream*')
    const log = quietLogger().forComponent('libp2p:yamux')
    expect(log.enabled).toBe(false)
    expect(log.newScope('stream:outbound:1').enabled).toBe(true)
    expect(log.newScope('stream:outbound:1')).toHaveProperty('namespace', 'libp2p:yamux:stream:outbound:1')
    enable('libp2p:yamux:error')
    const withErrors = quietLogger().forComponent('libp2p:yamux')
    expect(withErrors.enabled).toBe(false)
    expect(withErrors.error).not.toBe(quietLogger().forComponent('libp2p:tcp').error)
  })
})
