import { describe, expect, it } from 'vitest'
import { preflight } from '../../../bench/fleet/preflight.ts'

const all = () => true

describe('preflight', () => {
  it('lets root with every tool through', () => {
    expect(preflight(0, all)).toBeUndefined()
  })

  it('refuses a non-root user in one line, before looking for tools', () => {
    const msg = preflight(65534, () => false)
    expect(msg).toMatch(/needs root/)
    expect(msg).not.toMatch(/\n/)
  })

  it('names each missing command and the packages to install, once each', () => {
    const msg = preflight(0, (c) => c === 'docker-registry')
    expect(msg).toBe(
      'bench: missing ip, tc, skopeo; install with `apt-get install -y iproute2 skopeo` (or `bash test/e2e/setup.sh`)',
    )
  })
})
