import { describe, expect, it } from 'vitest'
import { skopeoPull } from '../../../bench/fleet/scenario.ts'

describe('skopeoPull', () => {
  it('copies over plain http into an OCI layout (layers in parallel), away from the machine registries.conf and logins', () => {
    expect(skopeoPull('169.254.1.1:5000', { name: 'bench/sample', tag: 'v1' }, '/tmp/x/node-1')).toEqual({
      cmd: 'skopeo',
      args: [
        '--insecure-policy',
        '--registries-conf',
        '/dev/null',
        'copy',
        '--quiet',
        '--src-tls-verify=false',
        '--src-no-creds',
        '--dest-oci-accept-uncompressed-layers',
        'docker://169.254.1.1:5000/bench/sample:v1',
        'oci:/tmp/x/node-1:v1',
      ],
    })
  })
})
