import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDemoOrigin } from '../../shared/sample/origin.ts'
import { DEFAULT_MANIFEST_ACCEPT, digestOf } from '../../shared/oci/index.ts'
import { generateSampleImage, hostPlatform, pushSampleImage, type SampleImage } from '../../shared/sample/index.ts'
import { freePort } from '../../harness/e2e/process.ts'

const run = promisify(execFile)
const USER = 'shoal'
const PASS = 'sample-pass'
const BASIC = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`

/** `podman pull` into a throwaway vfs store; returns the sizes of the sample payload files it unpacked. */
async function podmanPull(store: string, ref: string, creds?: string): Promise<number[]> {
  const storage = ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs']
  await run('podman', [
    ...storage,
    'pull',
    '--tls-verify=false',
    ...(creds === undefined ? [] : ['--creds', creds]),
    ref,
  ])
  const sizes: number[] = []
  const layers = join(store, 'root', 'vfs', 'dir')
  for (const layer of await readdir(layers)) {
    const files = await readdir(join(layers, layer, 'shoal-sample')).catch(() => [])
    for (const f of files.filter((x) => x.endsWith('.bin')))
      sizes.push((await stat(join(layers, layer, 'shoal-sample', f))).size)
  }
  return sizes.sort((a, b) => a - b)
}

/** Resolves once distribution logs that it listens; rejects if it exits first. */
function untilListening(proc: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = ''
    proc.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (log.includes('listening on')) resolve()
    })
    proc.once('exit', (code) => reject(new Error(`docker-registry exited ${code}: ${log.slice(-2000)}`)))
  })
}

describe('sample images with real tools: distribution (htpasswd), skopeo, umoci, podman', () => {
  let dir: string
  let registry: ChildProcess
  let url: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-sample-push-'))
    const { stdout } = await run('htpasswd', ['-Bbn', USER, PASS])
    await writeFile(join(dir, 'htpasswd'), stdout)
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    await writeFile(
      join(dir, 'config.yml'),
      [
        'version: 0.1',
        'log: { level: info }',
        `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }`,
        `http: { addr: "127.0.0.1:${port}" }`,
        `auth: { htpasswd: { realm: shoal-test, path: ${join(dir, 'htpasswd')} } }`,
        '',
      ].join('\n'),
    )
    registry = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
    await untilListening(registry)
  })

  afterAll(async () => {
    if (registry !== undefined && registry.exitCode === null) {
      const exited = new Promise((resolve) => registry.once('exit', resolve))
      registry.kill('SIGTERM')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  })

  async function expectServed(name: string, tag: string, image: SampleImage): Promise<void> {
    const get = (path: string, accept?: string) =>
      request(`${url}/v2/${name}/${path}`, {
        headers: { authorization: BASIC, ...(accept === undefined ? {} : { accept }) },
      })
    const root = await get(`manifests/${tag}`, DEFAULT_MANIFEST_ACCEPT)
    const rootBytes = Buffer.from(await root.body.arrayBuffer())
    expect(root.statusCode).toBe(200)
    expect(root.headers['content-type']).toBe(image.root.mediaType)
    expect(digestOf(rootBytes)).toBe(image.root.digest)
    for (const m of image.manifests) {
      const res = await get(`manifests/${m.digest}`, DEFAULT_MANIFEST_ACCEPT)
      expect(digestOf(Buffer.from(await res.body.arrayBuffer()))).toBe(m.digest)
    }
    for (const b of image.blobs) {
      const res = await get(`blobs/${b.digest}`)
      expect([b.digest, res.statusCode]).toEqual([b.digest, 200])
      expect(digestOf(Buffer.from(await res.body.arrayBuffer()))).toBe(b.digest)
    }
  }

  it('pushes an OCI index (chunked and monolithic uploads) that skopeo copies and umoci unpacks', async () => {
    const image = await generateSampleImage({
      dir: join(dir, 'oci'),
      layers: 2,
      layerBytes: [10_000, 3 * 1024 * 1024],
      platforms: [hostPlatform(), hostPlatform() === 'linux/s390x' ? 'linux/amd64' : 'linux/s390x'],
      seed: 'e2e-oci',
    })
    await pushSampleImage(url, 'team/app', 'v1', image, { username: USER, password: PASS, chunkBytes: 1024 * 1024 })
    await expectServed('team/app', 'v1', image)

    const layout = join(dir, 'layout')
    await run('skopeo', [
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      `${USER}:${PASS}`,
      `docker://127.0.0.1:${new URL(url).port}/team/app:v1`,
      `oci:${layout}:v1`,
    ])
    const bundle = join(dir, 'bundle')
    await run('umoci', ['unpack', '--rootless', '--image', `${layout}:v1`, bundle])
    expect((await stat(join(bundle, 'rootfs/shoal-sample/layer-0.bin'))).size).toBe(10_000)
    expect((await stat(join(bundle, 'rootfs/shoal-sample/layer-1.bin'))).size).toBe(3 * 1024 * 1024)

    // podman unpacks each layer into its own vfs directory, on top of the ones below.
    const ref = `127.0.0.1:${new URL(url).port}/team/app:v1`
    expect(await podmanPull(join(dir, 'podman'), ref, `${USER}:${PASS}`)).toEqual([10_000, 10_000, 3 * 1024 * 1024])
  })

  it('lets podman pull a sample image from the demo origin', async () => {
    const image = await generateSampleImage({
      dir: join(dir, 'demo'),
      layers: 2,
      layerBytes: [1000, 2000],
      platforms: [hostPlatform(), hostPlatform() === 'linux/s390x' ? 'linux/amd64' : 'linux/s390x'],
      format: 'docker',
    })
    const origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
    try {
      const ref = `${origin.url.replace('http://', '')}/demo/app:v1`
      expect(await podmanPull(join(dir, 'podman-demo'), ref)).toEqual([1000, 1000, 2000])
      // Two layers and the config of the host's platform, each fetched once.
      expect(origin.stats.blobRequests).toBe(3)
      expect([...origin.stats.perBlob.values()].every((b) => b.requests === 1)).toBe(true)
    } finally {
      await origin.stop()
    }
  })

  it('pushes docker schema2 images and umoci-style manifests without mediaType', async () => {
    const docker = await generateSampleImage({
      dir: join(dir, 'docker'),
      layers: 1,
      layerBytes: 5000,
      platforms: ['linux/amd64', 'linux/arm64'],
      format: 'docker',
    })
    await pushSampleImage(url, 'team/docker', 'latest', docker, { username: USER, password: PASS })
    await expectServed('team/docker', 'latest', docker)

    const bare = await generateSampleImage({
      dir: join(dir, 'bare'),
      layers: 1,
      layerBytes: 5000,
      platforms: ['linux/amd64', 'linux/arm64'],
      omitMediaType: true,
    })
    await pushSampleImage(url, 'team/bare', '1', bare, { username: USER, password: PASS })
    await expectServed('team/bare', '1', bare)
  })

  it('fails with the registry status on bad credentials', async () => {
    const image = await generateSampleImage({ dir: join(dir, 'denied'), layers: 1, layerBytes: 10 })
    await expect(
      pushSampleImage(url, 'team/denied', 'x', image, { username: USER, password: 'wrong' }),
    ).rejects.toMatchObject({ name: 'SamplePushError', status: 401 })
  })
})
