import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { digestOf, manifestMediaType, OCI_INDEX, OCI_MANIFEST } from '../../../shared/oci/index.ts'
import {
  generateSampleImage,
  hostPlatform,
  parsePlatform,
  type SampleBlob,
  type SampleImage,
  type SampleManifest,
} from '../../../shared/sample/index.ts'
import { parseTarHeader, TAR_BLOCK_BYTES, type TarEntry, tarPaddingBytes } from '../../../shared/sample/tar.ts'

const run = promisify(execFile)

interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: { os: string; architecture: string; variant?: string }
}
interface ManifestDoc {
  schemaVersion: number
  mediaType?: string
  config: Descriptor
  layers: Descriptor[]
}
interface IndexDoc {
  schemaVersion: number
  mediaType?: string
  manifests: Descriptor[]
}
interface ConfigDoc {
  os: string
  architecture: string
  variant?: string
  rootfs: { type: string; diff_ids: string[] }
  history: unknown[]
}

const json = <T>(m: SampleManifest): T => JSON.parse(Buffer.from(m.bytes).toString('utf8')) as T

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return `sha256:${h.digest('hex')}`
}

/** Walks an archive with our own parser, checking padding and the two end blocks. */
function readTar(bytes: Buffer): { entry: TarEntry; data: Buffer }[] {
  const out: { entry: TarEntry; data: Buffer }[] = []
  let off = 0
  for (;;) {
    const entry = parseTarHeader(bytes.subarray(off, off + TAR_BLOCK_BYTES))
    off += TAR_BLOCK_BYTES
    if (entry === null) break
    const data = bytes.subarray(off, off + entry.size)
    const pad = bytes.subarray(off + entry.size, off + entry.size + tarPaddingBytes(entry.size))
    expect(pad.every((b) => b === 0)).toBe(true)
    off += entry.size + pad.length
    out.push({ entry, data })
  }
  expect(bytes.subarray(off, off + TAR_BLOCK_BYTES).every((b) => b === 0)).toBe(true)
  expect(off + TAR_BLOCK_BYTES).toBe(bytes.length)
  return out
}

function blobOf(image: SampleImage, digest: string): SampleBlob {
  const b = image.blobs.find((x) => x.digest === digest)
  if (b === undefined) throw new Error(`blob ${digest} missing`)
  return b
}

describe('generateSampleImage', () => {
  let dir: string
  let n = 0
  const fresh = async (): Promise<string> => {
    const d = join(dir, String(n++))
    await mkdir(d)
    return d
  }
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-sample-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('builds an OCI index over per-platform manifests whose blobs are files with matching digests', async () => {
    const image = await generateSampleImage({
      dir: await fresh(),
      layers: 2,
      layerBytes: 100_000,
      platforms: ['linux/amd64', 'linux/arm64/v8'],
      seed: 'index',
    })
    expect(image.root.mediaType).toBe(OCI_INDEX)
    expect(image.manifests.at(-1)).toBe(image.root)
    for (const m of image.manifests) expect(m.digest).toBe(digestOf(m.bytes))
    for (const b of image.blobs) {
      expect(await sha256File(b.path)).toBe(b.digest)
      expect((await stat(b.path)).size).toBe(b.size)
    }
    expect(new Set(image.blobs.map((b) => b.digest)).size).toBe(image.blobs.length)
    expect(image.blobs).toHaveLength(2 * 3) // two platforms × (config + two layers)

    const index = json<IndexDoc>(image.root)
    expect(index).toMatchObject({ schemaVersion: 2, mediaType: OCI_INDEX })
    expect(index.manifests.map((d) => d.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ])
    const referenced = new Set<string>()
    for (const [i, d] of index.manifests.entries()) {
      const child = image.manifests[i]!
      expect(d).toMatchObject({ mediaType: OCI_MANIFEST, digest: child.digest, size: child.bytes.byteLength })
      expect(child.platform).toEqual(d.platform)
      const doc = json<ManifestDoc>(child)
      expect(doc.config.mediaType).toBe('application/vnd.oci.image.config.v1+json')
      for (const desc of [doc.config, ...doc.layers]) {
        expect(blobOf(image, desc.digest)).toMatchObject({ size: desc.size, mediaType: desc.mediaType })
        referenced.add(desc.digest)
      }
      expect(doc.layers.map((l) => l.mediaType)).toEqual(Array(2).fill('application/vnd.oci.image.layer.v1.tar'))
      const config = JSON.parse(await readFile(blobOf(image, doc.config.digest).path, 'utf8')) as ConfigDoc
      expect({ os: config.os, architecture: config.architecture, variant: config.variant }).toEqual({
        variant: undefined,
        ...d.platform,
      })
      // Uncompressed layers: the diff_ids are the layer digests themselves.
      expect(config.rootfs).toEqual({ type: 'layers', diff_ids: doc.layers.map((l) => l.digest) })
      expect(config.history).toHaveLength(2)
    }
    expect(referenced.size).toBe(image.blobs.length)
    // Per-platform layers differ.
    const [a, b] = image.manifests.slice(0, 2).map((m) => json<ManifestDoc>(m).layers.map((l) => l.digest))
    expect(a!.some((d) => b!.includes(d))).toBe(false)
  })

  it('writes layers as valid tar archives of incompressible payload', async () => {
    const image = await generateSampleImage({ dir: await fresh(), layers: 2, layerBytes: [1000, 300_000], seed: 't' })
    const layers = json<ManifestDoc>(image.root).layers
    expect(layers).toHaveLength(2)
    const listing = await run('tar', ['-tvf', blobOf(image, layers[1]!.digest).path])
    expect(listing.stdout).toMatch(/^drwxr-xr-x root\/root +0 .* shoal-sample\/$/m)
    expect(listing.stdout).toMatch(/^-rw-r--r-- root\/root +300000 .* shoal-sample\/layer-1\.bin$/m)
    const out = join(dir, 'extract')
    await mkdir(out)
    for (const l of layers) await run('tar', ['-xf', blobOf(image, l.digest).path, '-C', out])
    expect((await stat(join(out, 'shoal-sample/layer-0.bin'))).size).toBe(1000)
    expect((await stat(join(out, 'shoal-sample/layer-1.bin'))).size).toBe(300_000)

    const entries = readTar(await readFile(blobOf(image, layers[1]!.digest).path))
    expect(entries.map((e) => [e.entry.path, e.entry.type])).toEqual([
      ['shoal-sample/', 'directory'],
      ['shoal-sample/layer-1.txt', 'file'],
      ['shoal-sample/layer-1.bin', 'file'],
    ])
    const payload = entries[2]!.data
    expect(payload.length).toBe(300_000)
    expect(gzipSync(payload).length).toBeGreaterThan(payload.length * 0.99)
  })

  it('follows the options: docker media types, umoci-style missing mediaType, sizes cycling, host default', async () => {
    const docker = await generateSampleImage({
      dir: await fresh(),
      layerBytes: 10,
      platforms: ['linux/amd64', 'linux/arm/v7'],
      format: 'docker',
    })
    expect(docker.root.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json')
    expect(json<IndexDoc>(docker.root).mediaType).toBe(docker.root.mediaType)
    const child = json<ManifestDoc>(docker.manifests[0]!)
    expect(child.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')
    expect(child.config.mediaType).toBe('application/vnd.docker.container.image.v1+json')
    expect(child.layers).toHaveLength(3)
    expect(new Set(child.layers.map((l) => l.mediaType))).toEqual(
      new Set(['application/vnd.docker.image.rootfs.diff.tar']),
    )

    const bare = await generateSampleImage({ dir: await fresh(), layers: 3, layerBytes: [0, 600], omitMediaType: true })
    expect(bare.root.mediaType).toBe(OCI_MANIFEST)
    expect(bare.root.platform).toEqual(parsePlatform(hostPlatform()))
    expect(json<ManifestDoc>(bare.root).mediaType).toBeUndefined()
    expect(manifestMediaType(bare.root.bytes, undefined)).toBe(OCI_MANIFEST)
    const sizes = []
    for (const l of json<ManifestDoc>(bare.root).layers) {
      const entries = readTar(await readFile(blobOf(bare, l.digest).path))
      sizes.push(entries.at(-1)!.entry.size)
    }
    expect(sizes).toEqual([0, 600, 0])

    const bareIndex = await generateSampleImage({
      dir: await fresh(),
      layers: 1,
      layerBytes: 1,
      platforms: ['linux/amd64', 'linux/s390x'],
      omitMediaType: true,
    })
    expect(json<IndexDoc>(bareIndex.root).mediaType).toBeUndefined()
    expect(manifestMediaType(bareIndex.root.bytes, undefined)).toBe(OCI_INDEX)
  })

  it('rejects options that describe no valid image', async () => {
    const d = await fresh()
    const bad = [
      { dir: d, format: 'docker' as const, omitMediaType: true },
      { dir: d, platforms: ['linux'] },
      { dir: d, platforms: ['linux/amd64', 'linux/amd64'] },
      { dir: d, platforms: [] },
      { dir: d, layers: 0 },
      { dir: d, layerBytes: -1 },
      { dir: d, layerBytes: [] },
    ]
    for (const opts of bad) {
      await expect(generateSampleImage(opts)).rejects.toMatchObject({
        name: 'SampleOptionsError',
        code: 'SAMPLE_OPTIONS_INVALID',
      })
    }
    expect(await readdir(d)).toEqual([])
  })

  it('is deterministic by seed and random without one', async () => {
    const opts = { layers: 2, layerBytes: 50_000, platforms: ['linux/amd64', 'linux/arm64'] }
    const a = await generateSampleImage({ ...opts, dir: await fresh(), seed: 'bench-1' })
    const b = await generateSampleImage({ ...opts, dir: await fresh(), seed: 'bench-1' })
    const c = await generateSampleImage({ ...opts, dir: await fresh(), seed: 'bench-2' })
    const r1 = await generateSampleImage({ ...opts, dir: await fresh() })
    const r2 = await generateSampleImage({ ...opts, dir: await fresh() })
    expect(b.root.digest).toBe(a.root.digest)
    expect(b.blobs.map((x) => x.digest)).toEqual(a.blobs.map((x) => x.digest))
    expect(Buffer.from(b.root.bytes)).toEqual(Buffer.from(a.root.bytes))
    const digests = (i: SampleImage): Set<string> => new Set(i.blobs.map((x) => x.digest))
    expect([...digests(c)].some((d) => digests(a).has(d))).toBe(false)
    expect([...digests(r1)].some((d) => digests(r2).has(d))).toBe(false)
  })

  it('stops on abort and leaves no temp file behind', async () => {
    const d = await fresh()
    const ac = new AbortController()
    ac.abort()
    await expect(generateSampleImage({ dir: d, seed: 'x', signal: ac.signal })).rejects.toMatchObject({
      name: 'AbortError',
    })
    const late = new AbortController()
    const p = generateSampleImage({ dir: d, layers: 1, layerBytes: 256 * 1024 * 1024, signal: late.signal })
    setImmediate(() => late.abort())
    await expect(p).rejects.toMatchObject({ name: 'AbortError' })
    const left = await readdir(join(d, 'blobs', 'sha256')).catch(() => [])
    expect(left).toEqual([])
  })

  it('generates a 64 MiB layer fast', async () => {
    const size = 64 * 1024 * 1024
    const t0 = performance.now()
    const image = await generateSampleImage({ dir: await fresh(), layers: 1, layerBytes: size, seed: 'big' })
    const ms = performance.now() - t0
    const layer = json<ManifestDoc>(image.root).layers[0]!
    // dir header, note header and block, payload header, payload, two end blocks
    expect(layer.size).toBe(size + 6 * TAR_BLOCK_BYTES)
    expect(await sha256File(blobOf(image, layer.digest).path)).toBe(layer.digest)
    // Measured ≈ 100 ms on 2 cores; generous for a loaded CI machine.
    expect(ms).toBeLessThan(5000)
  })

  it('streams a big layer to disk with memory bounded whatever its size', async () => {
    const size = 256 * 1024 * 1024
    const before = process.memoryUsage()
    let peakExternal = 0
    let peakHeap = 0
    const sampler = setInterval(() => {
      const m = process.memoryUsage()
      peakExternal = Math.max(peakExternal, m.arrayBuffers - before.arrayBuffers)
      peakHeap = Math.max(peakHeap, m.heapUsed - before.heapUsed)
    }, 1)
    const d = await fresh()
    const image = await generateSampleImage({ dir: d, layers: 1, layerBytes: size })
    clearInterval(sampler)
    expect(image.blobs.find((b) => b.mediaType.endsWith('tar'))?.size).toBe(size + 6 * TAR_BLOCK_BYTES)
    // Written 1 MiB buffers are garbage that V8 collects about every 64 MiB of external memory
    // (measured peak ≈ 40-70 MiB); a layer held whole would show all 256 MiB. The heap holds none of it.
    expect(peakExternal).toBeLessThan(size / 2)
    expect(peakHeap).toBeLessThan(16 * 1024 * 1024)
    await rm(d, { recursive: true })
  })
})
