/**
 * Run inside the origin's namespace: generates the sample image and pushes it to the origin registry over
 * the namespace's own loopback path (so the push never crosses a shaped link). Prints a JSON summary.
 */
import { generateSampleImage, pushSampleImage } from '../../../shared/sample/index.ts'
import type { PushedImage, PushRequest } from '../image.ts'

const req = JSON.parse(process.argv[2] ?? '{}') as PushRequest
const t0 = performance.now()
const image = await generateSampleImage({
  dir: req.dir,
  layers: req.layers,
  layerBytes: req.layerBytes,
  seed: req.seed,
})
const t1 = performance.now()
await pushSampleImage(req.url, req.name, req.tag, image)
const t2 = performance.now()
const out: PushedImage = {
  rootDigest: image.root.digest,
  rootMediaType: image.root.mediaType,
  manifestBytes: image.manifests.reduce((n, m) => n + m.bytes.byteLength, 0),
  blobs: image.blobs.map((b) => ({
    digest: b.digest,
    size: b.size,
    mediaType: b.mediaType,
  })),
  generateS: (t1 - t0) / 1000,
  pushS: (t2 - t1) / 1000,
}
process.stdout.write(`${JSON.stringify(out)}\n`)
