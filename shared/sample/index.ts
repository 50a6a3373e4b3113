import type { Digest } from '../oci/digest.ts'

/** A blob whose content lives in a file. */
export interface SampleBlob {
  readonly digest: Digest
  readonly size: number
  readonly mediaType: string
  readonly path: string
}

export interface SamplePlatform {
  readonly os: string
  readonly architecture: string
  readonly variant?: string
}

/** A manifest or an index, held in memory as the exact bytes its digest names. */
export interface SampleManifest {
  readonly digest: Digest
  readonly mediaType: string
  readonly bytes: Uint8Array
  /** Set on per-platform manifests (and on the root when it is a plain manifest). */
  readonly platform?: SamplePlatform
}

export interface SampleImage {
  /** A manifest, or an index over per-platform manifests. */
  readonly root: SampleManifest
  /** Every manifest, children first, the root last. */
  readonly manifests: readonly SampleManifest[]
  /** Configs and layers, each once. */
  readonly blobs: readonly SampleBlob[]
}

export interface SampleImageOptions {
  /** Where blob files are written (under `<dir>/blobs/sha256/`). */
  dir: string
  /** Layers per platform; default 3, or the length of `layerBytes` when it is an array. */
  layers?: number
  /** Uncompressed payload per layer (an array is cycled over the layers); default 1 MiB. */
  layerBytes?: number | readonly number[]
  /** `os/arch[/variant]`; several give an index over per-platform manifests. Default: this host's. */
  platforms?: readonly string[]
  /** `docker` = schema2 manifest and manifest list media types. Default `oci`. */
  format?: 'oci' | 'docker'
  /** Like umoci: manifest and index JSON without the `mediaType` field (OCI only). */
  omitMediaType?: boolean
  /** Same seed (and options), same bytes and digests; random content otherwise. */
  seed?: string
  signal?: AbortSignal
}

export interface PushSampleImageOptions {
  username?: string
  password?: string
  /** Blobs larger than this go up as chunked PATCHes of this size; default 32 MiB. */
  chunkBytes?: number
  signal?: AbortSignal
}

export { SampleOptionsError, SamplePushError } from './errors.ts'
export { generateSampleImage, hostPlatform, parsePlatform } from './generate.ts'
export { pushSampleImage } from './push.ts'
export { type DemoOrigin, type DemoOriginOptions, type DemoOriginStats, startDemoOrigin } from './origin.ts'
export { type PullResult, pullImage } from './pull.ts'
