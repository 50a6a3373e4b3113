import { parse } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import { checkConfigPath, containerdPlan, hostsToml } from '../../../cli/configure/containerd.ts'
import { ConfigureError } from '../../../cli/configure/errors.ts'

const mirror = new URL('http://127.0.0.1:5000')

describe('hostsToml', () => {
  it('puts the agent first with pull and resolve, a short dial timeout, and the registry as server', () => {
    const doc = parse(hostsToml(mirror, 'https://registry-1.docker.io')) as Record<string, unknown>
    expect(JSON.parse(JSON.stringify(doc))).toEqual({
      server: 'https://registry-1.docker.io',
      host: { 'http://127.0.0.1:5000': { capabilities: ['pull', 'resolve'], dial_timeout: '200ms' } },
    })
    expect(parse(hostsToml(mirror, undefined))).not.toHaveProperty('server')
  })

  it('writes one file per registry and _default', () => {
    const plan = containerdPlan({
      registries: ['docker.io', 'ghcr.io'],
      mirror,
      configToml: 'version = 2\n',
      patchConfig: false,
    })
    expect(plan.files.map((f) => f.path)).toEqual([
      'etc/containerd/certs.d/docker.io/hosts.toml',
      'etc/containerd/certs.d/ghcr.io/hosts.toml',
      'etc/containerd/certs.d/_default/hosts.toml',
    ])
    expect(plan.files[1]!.content.toString()).toContain('server = "https://ghcr.io"')
  })
})

describe('checkConfigPath', () => {
  it.each([
    ['version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'],
    ['version = 3\n[plugins.\'io.containerd.cri.v1.images\'.registry]\nconfig_path = "/x:/etc/containerd/certs.d/"\n'],
    ['[plugins.cri.registry]\nconfig_path = "/etc/containerd/certs.d"\n'],
  ])('accepts a config_path that lists the folder (%#)', (text) => {
    expect(checkConfigPath(text).kind).toBe('ok')
  })

  it('adds the key under an existing table, keeping comments and other keys', () => {
    const text =
      '# keep me\nversion = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n    # and me\n    foo = 1\n\n[other]\nx = 1\n'
    const c = checkConfigPath(text)
    expect(c.kind).toBe('change')
    if (c.kind !== 'change') return
    expect(c.patched).toBe(
      '# keep me\nversion = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "/etc/containerd/certs.d"\n    # and me\n    foo = 1\n\n[other]\nx = 1\n',
    )
  })

  it('adds the table when it is missing, for v3', () => {
    const c = checkConfigPath('version = 3\n\n[plugins."io.containerd.cri.v1.runtime"]\n  x = 1\n')
    expect(c.kind === 'change' && c.patched).toBe(
      'version = 3\n\n[plugins."io.containerd.cri.v1.runtime"]\n  x = 1\n\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/certs.d"\n',
    )
  })

  it('writes a v2 file when there is none (containerd 1.x reads no certs.d by default)', () => {
    const c = checkConfigPath(undefined)
    expect(c.kind === 'change' && c.patched).toContain('[plugins."io.containerd.grpc.v1.cri".registry]')
  })

  it('will not rewrite a key it cannot edit as one line, and says what to set', () => {
    const c = checkConfigPath('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nregistry = { config_path = "" }\n')
    expect(c.kind === 'change' && c.patched).toBeUndefined()
    expect(() =>
      containerdPlan({
        registries: [],
        mirror,
        configToml: 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nregistry = { config_path = "" }\n',
        patchConfig: true,
      }),
    ).toThrow(ConfigureError)
  })

  it('warns about registry.mirrors beside config_path', () => {
    const c = checkConfigPath(
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\nendpoint = ["https://x"]\n',
    )
    expect(c.warnings.join()).toContain('mirrors')
  })

  it('refuses a config.toml that is not TOML', () => {
    expect(() => checkConfigPath('version = = 2')).toThrow(ConfigureError)
  })
})
