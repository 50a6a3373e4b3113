import { parse } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import { ConfigureError } from '../../../cli/configure/errors.ts'
import { podmanPlan } from '../../../cli/configure/podman.ts'

const mirror = new URL('http://127.0.0.1:5000')
const conf = (text: string | undefined, registries = ['ghcr.io']) =>
  podmanPlan({ registries, mirror, registriesConf: text }).files[0]!.content.toString()

describe('podmanPlan', () => {
  it('puts the agent first in an existing entry, keeping its settings and other mirrors', () => {
    const text = conf(
      '[[registry]]\nprefix = "ghcr.io"\nlocation = "ghcr.io"\nblocked = false\n\n[[registry.mirror]]\nlocation = "other.example/ghcr"\n',
    )
    expect(JSON.parse(JSON.stringify(parse(text)))).toEqual({
      registry: [
        {
          prefix: 'ghcr.io',
          location: 'ghcr.io',
          blocked: false,
          mirror: [{ location: '127.0.0.1:5000/ghcr.io', insecure: true }, { location: 'other.example/ghcr' }],
        },
      ],
    })
    // and a second run keeps it as it is
    expect(conf(text)).toBe(text)
  })

  it('matches an entry by location when it has no prefix', () => {
    const text = conf('[[registry]]\nlocation = "ghcr.io"\n')
    const doc = parse(text) as { registry: { mirror: { location: string }[] }[] }
    expect(doc.registry).toHaveLength(1)
    expect(doc.registry[0]!.mirror[0]!.location).toBe('127.0.0.1:5000/ghcr.io')
  })

  it('writes a new file with one entry per registry, ports written __', () => {
    const doc = parse(conf(undefined, ['docker.io', 'localhost:5001'])) as {
      registry: { prefix: string; mirror: { location: string }[] }[]
    }
    expect(doc.registry.map((r) => [r.prefix, r.mirror[0]!.location])).toEqual([
      ['docker.io', '127.0.0.1:5000/docker.io'],
      ['localhost:5001', '127.0.0.1:5000/localhost__5001'],
    ])
  })

  it('marks an https agent as secure', () => {
    const text = podmanPlan({
      registries: ['ghcr.io'],
      mirror: new URL('https://node:5443'),
      registriesConf: undefined,
    }).files[0]!.content.toString()
    expect(text).not.toContain('insecure')
  })

  it('refuses the v1 format', () => {
    expect(() => conf('[registries.search]\nregistries = ["docker.io"]\n')).toThrow(ConfigureError)
  })
})
