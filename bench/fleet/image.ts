import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ImageSpec } from './config.ts'
import type { Fleet } from './fleet.ts'
import { runOk } from './proc.ts'

/** What children/push.ts is told to do. */
export interface PushRequest {
  readonly url: string
  readonly name: string
  readonly tag: string
  readonly dir: string
  readonly layers: number
  readonly layerBytes: number
  readonly seed: string
}

/** What children/push.ts reports. */
export interface PushedImage {
  readonly rootDigest: string
  readonly rootMediaType: string
  readonly manifestBytes: number
  readonly blobs: readonly {
    readonly digest: string
    readonly size: number
    readonly mediaType: string
  }[]
  readonly generateS: number
  readonly pushS: number
}

/** The image every scenario pulls. */
export interface BenchImage extends PushedImage {
  /** `169.254.1.1:5000/bench/sample:v1` */
  readonly originRef: string
  readonly name: string
  readonly tag: string
  /** S: every byte a client must fetch (manifest + config + layers). */
  readonly bytes: number
}

/** Generates the image and pushes it to the origin, from inside the origin's namespace. */
export async function pushImage(
  fleet: Fleet,
  originHost: string,
  spec: ImageSpec,
  workDir: string,
  opts: { signal?: AbortSignal } = {},
): Promise<BenchImage> {
  const dir = join(workDir, 'image')
  const req: PushRequest = {
    url: `http://${originHost}`,
    name: spec.name,
    tag: spec.tag,
    dir,
    layers: spec.layers,
    layerBytes: spec.layerBytes,
    seed: spec.seed,
  }
  const script = new URL('./children/push.ts', import.meta.url).pathname
  const { stdout } = await runOk(fleet.exec(fleet.origin, process.execPath, [script, JSON.stringify(req)]), {
    timeoutMs: 15 * 60_000,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  })
  // The registry holds its own copy now; the generated files are not needed again.
  await rm(dir, { recursive: true, force: true })
  const pushed = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as PushedImage
  const bytes = pushed.manifestBytes + pushed.blobs.reduce((n, b) => n + b.size, 0)
  return {
    ...pushed,
    originRef: `${originHost}/${spec.name}:${spec.tag}`,
    name: spec.name,
    tag: spec.tag,
    bytes,
  }
}
