import { randomBytes } from 'node:crypto'
import { type Digest, digestOf } from '../oci/digest.ts'
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.ts'
import { BlobFile } from './blob-file.ts'
import { SampleOptionsError } from './errors.ts'
import type { SampleBlob, SampleImage, SampleImageOptions, SampleManifest, SamplePlatform } from './index.ts'
import { KeyStream } from './random.ts'
import { TAR_END_BYTES, type TarEntry, tarHeader, tarPaddingBytes } from './tar.ts'

const DEFAULT_LAYERS = 3
const DEFAULT_LAYER_BYTES = 1024 * 1024
/** Payload is split into files of at most this size, well under ustar's 8 GiB field limit. */
const MAX_DATA_FILE_BYTES = 1024 * 1024 * 1024
/** 2024-01-01T00:00:00Z: a fixed mtime and creation date keep seeded images byte-identical. */
const SAMPLE_EPOCH_S = 1_704_067_200
const SAMPLE_CREATED = new Date(SAMPLE_EPOCH_S * 1000).toISOString()
const ROOT_DIR = 'shoal-sample'

interface MediaTypes {
  readonly manifest: string
  readonly index: string
  readonly config: string
  readonly layer: string
}

const MEDIA_TYPES: Readonly<Record<'oci' | 'docker', MediaTypes>> = {
  oci: {
    manifest: OCI_MANIFEST,
    index: OCI_INDEX,
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    manifest: DOCKER_MANIFEST,
    index: DOCKER_MANIFEST_LIST,
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar',
  },
}

const NODE_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm/v7',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
}

/** This host as an `os/arch[/variant]` string, in Go's (and so the registries') naming. */
export function hostPlatform(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform
  return `${os}/${NODE_ARCH[process.arch] ?? process.arch}`
}

export function parsePlatform(value: string): SamplePlatform {
  const parts = value.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new SampleOptionsError(`invalid platform ${JSON.stringify(value)}: want os/arch[/variant]`)
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined]
  return variant === undefined ? { os, architecture } : { os, architecture, variant }
}

function platformString(p: SamplePlatform): string {
  return p.variant === undefined ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`
}

interface Plan {
  readonly layerBytes: readonly number[]
  readonly platforms: readonly SamplePlatform[]
  readonly types: MediaTypes
  readonly omitMediaType: boolean
  readonly seed: string
}

function plan(opts: SampleImageOptions): Plan {
  const sizes = typeof opts.layerBytes === 'number' ? [opts.layerBytes] : (opts.layerBytes ?? [DEFAULT_LAYER_BYTES])
  if (sizes.length === 0) throw new SampleOptionsError('layerBytes must not be empty')
  for (const s of sizes) {
    if (!Number.isSafeInteger(s) || s < 0) throw new SampleOptionsError(`invalid layer size ${s}`)
  }
  const layers = opts.layers ?? (Array.isArray(opts.layerBytes) ? sizes.length : DEFAULT_LAYERS)
  if (!Number.isSafeInteger(layers) || layers < 1) throw new SampleOptionsError(`invalid layer count ${layers}`)
  const platformStrings = opts.platforms ?? [hostPlatform()]
  if (platformStrings.length === 0) throw new SampleOptionsError('platforms must not be empty')
  const platforms = platformStrings.map(parsePlatform)
  if (new Set(platforms.map(platformString)).size !== platforms.length) {
    throw new SampleOptionsError('duplicate platform')
  }
  const format = opts.format ?? 'oci'
  if (format === 'docker' && opts.omitMediaType === true) {
    throw new SampleOptionsError('docker schema2 manifests require mediaType')
  }
  return {
    layerBytes: Array.from({ length: layers }, (_, i) => sizes[i % sizes.length]!),
    platforms,
    types: MEDIA_TYPES[format],
    omitMediaType: opts.omitMediaType === true,
    seed: opts.seed ?? randomBytes(16).toString('hex'),
  }
}

/** Generates an image whose layers are real tar archives of incompressible bytes, written under `opts.dir`. */
export async function generateSampleImage(opts: SampleImageOptions): Promise<SampleImage> {
  const p = plan(opts)
  const blobs = new Map<Digest, SampleBlob>()
  const children: SampleManifest[] = []
  for (const platform of p.platforms) {
    const layers: SampleBlob[] = []
    for (const [index, payload] of p.layerBytes.entries()) {
      const label = `${p.seed}\n${platformString(platform)}\n${index}`
      const file = await writeLayer(opts.dir, label, index, payload, opts.signal)
      layers.push({ ...file, mediaType: p.types.layer })
    }
    const config = await writeSmallBlob(opts.dir, imageConfig(platform, layers), p.types.config)
    for (const b of [config, ...layers]) blobs.set(b.digest, b)
    const manifest = {
      schemaVersion: 2,
      ...(p.omitMediaType ? {} : { mediaType: p.types.manifest }),
      config: descriptor(config),
      layers: layers.map(descriptor),
    }
    children.push(jsonManifest(manifest, p.types.manifest, platform))
  }
  if (children.length === 1) return { root: children[0]!, manifests: children, blobs: [...blobs.values()] }
  const index = {
    schemaVersion: 2,
    ...(p.omitMediaType ? {} : { mediaType: p.types.index }),
    manifests: children.map((m) => ({
      mediaType: m.mediaType,
      digest: m.digest,
      size: m.bytes.byteLength,
      platform: m.platform,
    })),
  }
  const root = jsonManifest(index, p.types.index, undefined)
  return { root, manifests: [...children, root], blobs: [...blobs.values()] }
}

function descriptor(b: SampleBlob): { mediaType: string; digest: Digest; size: number } {
  return { mediaType: b.mediaType, digest: b.digest, size: b.size }
}

function jsonManifest(doc: unknown, mediaType: string, platform: SamplePlatform | undefined): SampleManifest {
  const bytes = Buffer.from(JSON.stringify(doc))
  const m = { digest: digestOf(bytes), mediaType, bytes }
  return platform === undefined ? m : { ...m, platform }
}

function imageConfig(platform: SamplePlatform, layers: readonly SampleBlob[]): unknown {
  return {
    created: SAMPLE_CREATED,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      WorkingDir: '/',
      Labels: { 'org.opencontainers.image.title': 'shoal-sample' },
    },
    // Layers are uncompressed, so each diff_id is the layer's own digest.
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    history: layers.map((l, i) => ({
      created: SAMPLE_CREATED,
      created_by: `shoal sample layer ${i} (${l.size} bytes)`,
    })),
  }
}

async function writeSmallBlob(dir: string, doc: unknown, mediaType: string): Promise<SampleBlob> {
  const file = await BlobFile.create(dir)
  try {
    await file.write(Buffer.from(JSON.stringify(doc)))
  } catch (err) {
    await file.abort()
    throw err
  }
  return { ...(await file.finish()), mediaType }
}

/** A layer's entries: its directory, a small note, then keystream payload files of at most 1 GiB each. */
function layerEntries(index: number, payloadBytes: number, noteBytes: number): TarEntry[] {
  const file = (path: string, size: number): TarEntry => ({
    path,
    type: 'file',
    size,
    mode: 0o644,
    mtime: SAMPLE_EPOCH_S,
  })
  const entries: TarEntry[] = [
    { path: `${ROOT_DIR}/`, type: 'directory', size: 0, mode: 0o755, mtime: SAMPLE_EPOCH_S },
    file(`${ROOT_DIR}/layer-${index}.txt`, noteBytes),
  ]
  const parts = Math.max(1, Math.ceil(payloadBytes / MAX_DATA_FILE_BYTES))
  for (let k = 0; k < parts; k++) {
    const size = Math.min(MAX_DATA_FILE_BYTES, payloadBytes - k * MAX_DATA_FILE_BYTES)
    entries.push(file(parts === 1 ? `${ROOT_DIR}/layer-${index}.bin` : `${ROOT_DIR}/layer-${index}.${k}.bin`, size))
  }
  return entries
}

async function writeLayer(
  dir: string,
  label: string,
  index: number,
  payloadBytes: number,
  signal: AbortSignal | undefined,
): Promise<{ digest: Digest; size: number; path: string }> {
  signal?.throwIfAborted()
  const note = Buffer.from(`shoal sample layer ${index}: ${payloadBytes} bytes of keystream\n`)
  const [dirEntry, noteEntry, ...payload] = layerEntries(index, payloadBytes, note.byteLength) as [
    TarEntry,
    TarEntry,
    ...TarEntry[],
  ]
  const stream = new KeyStream(label)
  const file = await BlobFile.create(dir)
  try {
    await file.write(tarHeader(dirEntry))
    await file.write(tarHeader(noteEntry))
    await file.write(Buffer.concat([note, Buffer.alloc(tarPaddingBytes(note.byteLength))]))
    for (const entry of payload) {
      await file.write(tarHeader(entry))
      for (let left = entry.size; left > 0;) {
        signal?.throwIfAborted()
        const chunk = stream.next(Math.min(left, KeyStream.maxChunkBytes))
        await file.write(chunk)
        left -= chunk.byteLength
      }
      await file.write(Buffer.alloc(tarPaddingBytes(entry.size)))
    }
    await file.write(Buffer.alloc(TAR_END_BYTES))
  } catch (err) {
    await file.abort()
    throw err
  }
  return file.finish()
}
