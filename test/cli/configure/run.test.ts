import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { main } from '../../../cli/main.ts'

let root: string
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-configure-'))
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

async function shoal(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } }
  const code = await main(argv, { io, env: {} })
  return { code, out, err }
}

/** Every file under the root with its bytes and mode, to compare whole trees. */
async function snapshot(dir = root, prefix = ''): Promise<Map<string, string>> {
  const { readdir } = await import('node:fs/promises')
  const out = new Map<string, string>()
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = `${prefix}${e.name}`
    if (e.isDirectory()) {
      out.set(`${rel}/`, 'dir')
      for (const [k, v] of await snapshot(join(dir, e.name), `${rel}/`)) out.set(k, v)
    } else {
      const mode = ((await stat(join(dir, e.name))).mode & 0o777).toString(8)
      out.set(rel, `${mode} ${(await readFile(join(dir, e.name))).toString('base64')}`)
    }
  }
  return out
}

async function put(path: string, text: string, mode = 0o644): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true })
  await writeFile(join(root, path), text)
  await chmod(join(root, path), mode)
}

const CONFIG = `# operator's comment, kept
version = 2
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/docker/certs.d"
`
// Another registry's file, written by someone else: configure never touches it.
const FOREIGN = 'etc/containerd/certs.d/quay.io/hosts.toml'

describe('shoal configure containerd', () => {
  it('writes, changes nothing the second time, and --undo restores the tree byte for byte', async () => {
    await put('etc/containerd/config.toml', CONFIG, 0o640)
    await put(FOREIGN, 'server = "https://quay.io"\n')
    const before = await snapshot()

    const first = await shoal(
      'configure',
      'containerd',
      '--root',
      root,
      '--registries',
      'docker.io,ghcr.io',
      '--patch-config',
    )
    expect(first.code).toBe(0)
    expect(first.out).toContain('restart containerd')
    const config = await readFile(join(root, 'etc/containerd/config.toml'), 'utf8')
    expect(config).toContain("# operator's comment, kept")
    expect(config).toContain('config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"')
    const hub = await readFile(join(root, 'etc/containerd/certs.d/docker.io/hosts.toml'), 'utf8')
    expect(hub).toContain('server = "https://registry-1.docker.io"')
    expect(hub).toContain('[host."http://127.0.0.1:5000"]')
    await stat(join(root, 'etc/containerd/certs.d/_default/hosts.toml'))
    const written = await snapshot()

    const second = await shoal(
      'configure',
      'containerd',
      '--root',
      root,
      '--registries',
      'docker.io,ghcr.io',
      '--patch-config',
    )
    expect(second.code).toBe(0)
    expect(second.out).toContain('nothing to change')
    expect(await snapshot()).toEqual(written)

    const undone = await shoal('configure', 'containerd', '--root', root, '--undo')
    expect(undone.code).toBe(0)
    expect(undone.err).toBe('')
    expect(await snapshot()).toEqual(before)
  })

  it('--dry-run prints the diff and writes nothing', async () => {
    await put('etc/containerd/config.toml', CONFIG)
    const before = await snapshot()
    const r = await shoal(
      'configure',
      'containerd',
      '--root',
      root,
      '--registries',
      'ghcr.io',
      '--patch-config',
      '--dry-run',
    )
    expect(r.code).toBe(0)
    expect(r.out).toContain('+++ b/etc/containerd/certs.d/ghcr.io/hosts.toml')
    expect(r.out).toContain('-  config_path = "/etc/docker/certs.d"')
    expect(r.out).toContain('+  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"')
    expect(await snapshot()).toEqual(before)
  })

  it('without --patch-config says exactly what to change in config.toml and leaves it', async () => {
    await put('etc/containerd/config.toml', 'version = 3\n')
    const r = await shoal('configure', 'containerd', '--root', root, '--registries', 'ghcr.io')
    expect(r.code).toBe(0)
    expect(r.out).toContain(
      '[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/certs.d"',
    )
    expect(await readFile(join(root, 'etc/containerd/config.toml'), 'utf8')).toBe('version = 3\n')
  })

  it('--undo --registries undoes only those registries, and leaves a file edited since with a warning', async () => {
    await shoal('configure', 'containerd', '--root', root, '--registries', 'docker.io,ghcr.io')
    const edited = 'etc/containerd/certs.d/docker.io/hosts.toml'
    await writeFile(join(root, edited), 'server = "https://registry-1.docker.io"\n# mine now\n')

    const r = await shoal('configure', 'containerd', '--root', root, '--undo', '--registries', 'ghcr.io,docker.io')
    expect(r.code).toBe(0)
    expect(r.err).toContain(`warning: ${edited} was edited since`)
    expect(await readFile(join(root, edited), 'utf8')).toContain('# mine now')
    await expect(stat(join(root, 'etc/containerd/certs.d/ghcr.io'))).rejects.toThrow()
    // _default was not named: still there, still undoable later
    await stat(join(root, 'etc/containerd/certs.d/_default/hosts.toml'))
    const rest = await shoal('configure', 'containerd', '--root', root, '--undo')
    expect(rest.out).toContain('removed')
    await expect(stat(join(root, 'etc/containerd/certs.d/_default/hosts.toml'))).rejects.toThrow()
  })

  it('refuses a bad registry or mirror with one line and exit 1, writing nothing', async () => {
    const bad = await shoal('configure', 'containerd', '--root', root, '--registries', 'ghcr.io/x')
    expect(bad.code).toBe(1)
    expect(bad.err.trim().split('\n')).toHaveLength(1)
    const mirror = await shoal('configure', 'containerd', '--root', root, '--mirror', 'http://127.0.0.1:5000/v2')
    expect(mirror.code).toBe(1)
    expect(await snapshot()).toEqual(new Map())
  })
})

describe('shoal configure docker', () => {
  it('merges registry-mirrors into daemon.json, once, and --undo restores it byte for byte', async () => {
    await put('etc/docker/daemon.json', '{"log-driver":"journald",   "registry-mirrors":["https://mirror.example"]}')
    const before = await snapshot()
    expect((await shoal('configure', 'docker', '--root', root, '--mirror', 'http://127.0.0.1:5999')).code).toBe(0)
    const doc = JSON.parse(await readFile(join(root, 'etc/docker/daemon.json'), 'utf8')) as Record<string, unknown>
    expect(doc).toEqual({
      'log-driver': 'journald',
      'registry-mirrors': ['http://127.0.0.1:5999', 'https://mirror.example'],
    })
    const written = await snapshot()
    expect((await shoal('configure', 'docker', '--root', root, '--mirror', 'http://127.0.0.1:5999')).out).toContain(
      'nothing to change',
    )
    expect(await snapshot()).toEqual(written)
    expect((await shoal('configure', 'docker', '--root', root, '--undo')).code).toBe(0)
    expect(await snapshot()).toEqual(before)
  })

  it('removes the daemon.json it created, and the folders it made', async () => {
    await shoal('configure', 'docker', '--root', root)
    expect((await shoal('configure', 'docker', '--root', root, '--undo')).code).toBe(0)
    expect(await snapshot()).toEqual(new Map())
  })

  it('leaves an invalid daemon.json alone with one line, exit 1', async () => {
    await put('etc/docker/daemon.json', '{ nope')
    const r = await shoal('configure', 'docker', '--root', root)
    expect(r.code).toBe(1)
    expect(r.err).toContain('not valid JSON')
    expect(await readFile(join(root, 'etc/docker/daemon.json'), 'utf8')).toBe('{ nope')
  })
})

describe('shoal configure podman', () => {
  it('appends mirrors that name their registry, keeps the file, and --undo restores it', async () => {
    await put('etc/containers/registries.conf', '# site policy\nunqualified-search-registries = ["docker.io"]\n')
    const before = await snapshot()
    const r = await shoal('configure', 'podman', '--root', root, '--registries', 'ghcr.io,127.0.0.1:5001')
    expect(r.code).toBe(0)
    const text = await readFile(join(root, 'etc/containers/registries.conf'), 'utf8')
    expect(text.startsWith('# site policy\nunqualified-search-registries = ["docker.io"]\n')).toBe(true)
    expect(text).toContain('location = "127.0.0.1:5000/ghcr.io"')
    expect(text).toContain('location = "127.0.0.1:5000/127.0.0.1__5001"')
    const written = await snapshot()
    await shoal('configure', 'podman', '--root', root, '--registries', 'ghcr.io,127.0.0.1:5001')
    expect(await snapshot()).toEqual(written)
    await shoal('configure', 'podman', '--root', root, '--undo')
    expect(await snapshot()).toEqual(before)
  })
})
