import { describe, expect, it } from 'vitest'
import { OriginUnavailableError } from '../../agent/errors.ts'
import { originRequest } from '../../agent/origin-port.ts'
import { InvalidOriginPathError, type Upstream } from '../../shared/origin/index.ts'

const upstream: Upstream = { registry: 'origin.test', baseUrl: new URL('http://origin.test') }

function failing(err: Error) {
  return { request: () => Promise.reject(err) }
}

describe('originRequest', () => {
  it('passes a client-input error through instead of calling it an outage', async () => {
    const err = new InvalidOriginPathError('/v2/../secret')
    await expect(originRequest(failing(err), upstream, { method: 'GET', path: '/v2/x' })).rejects.toBe(err)
  })

  it('turns a network failure into OriginUnavailableError', async () => {
    const err = new Error('connect ECONNREFUSED')
    await expect(originRequest(failing(err), upstream, { method: 'GET', path: '/v2/x' })).rejects.toBeInstanceOf(
      OriginUnavailableError,
    )
  })
})
